"""The job queue's topology and message format, shared by the AI service
(publisher), the worker (consumer) and the ``taskmesh dlq`` commands."""
