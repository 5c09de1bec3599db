"""taskmesh: shared code of every process (settings, logging, gRPC plumbing,
queue topology, the capabilities, the CLI) and, under ``taskmesh/<area>/v1``,
the protobuf stubs generated from ``protos/``."""
