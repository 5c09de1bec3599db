"""The gateway's tests run against the in-process gateway of tests/support/gateway.py
(fixtures registered by the suite's plugin, tests/support/plugin.py)."""
