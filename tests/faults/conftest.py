"""Fault tests make the state they need instead of racing for it: the LLM
simulator holds calls at its gate until the test opens it (tests/support/sim.py),
and ``broker_proxy`` (tests/support/plugin.py), a TCP proxy in front of RabbitMQ,
drops or stalls the broker for the stack behind it only."""
