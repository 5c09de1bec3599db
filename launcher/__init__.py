"""The ``taskmesh`` command: runs the services (``up``, one each), operator commands
through the services' APIs, ``submit`` and ``eval``. Above the services: it imports
them; nothing under ``taskmesh/`` imports it."""
