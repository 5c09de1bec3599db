"""The peer of the benchmark (SPEC §13): Taskiq with its aio-pika broker doing
one LLM call plus an HTTP callback per job, the way a user would build the same
pipeline without taskmesh. Benchmark code only; nothing in the product imports it.

- ``app``: the broker and the task, imported by ``taskiq worker`` and the producer;
- ``producer``: a process that submits the burst from concurrent clients;
- ``receiver``: the callback endpoint, counting callbacks;
- ``run``: starts all of these and measures a burst.
"""
