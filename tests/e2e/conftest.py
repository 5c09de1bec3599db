"""The real processes (tasks, ai, worker, gateway, llm-sim) against the local
RabbitMQ and a fresh SQLite database: the ``running_stack`` and ``stack_factory``
fixtures of tests/support/plugin.py."""
