"""Evaluation of parse-task against any OpenAI-compatible endpoint (``taskmesh eval``)."""
