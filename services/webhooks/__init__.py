"""Client webhook delivery (SPEC §5): consumes events from the webhook queue,
signs them (Standard Webhooks) and POSTs them, with retries through delay
queues. Runs inside the worker process (services/worker/main.py)."""
