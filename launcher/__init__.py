"""The ``taskmesh`` command."""
