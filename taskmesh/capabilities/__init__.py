"""Capabilities the worker runs and the AI service validates: each one owns its input
rules, prompts, output schema and handler, so both services share a single definition."""
