# One image for every taskmesh process; compose.yaml picks the command
# (gateway, tasks, ai, worker, llm-sim).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The generated gRPC stubs are committed, so a plain install needs no protoc.
# constraints.txt pins every package to the version the test suite ran with (`make lock`).
COPY pyproject.toml README.md constraints.txt ./
COPY taskmesh ./taskmesh
COPY services ./services
COPY gateway ./gateway
COPY launcher ./launcher
COPY llm_sim ./llm_sim
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home taskmesh

# Nothing is written under /app: state lives in PostgreSQL and RabbitMQ.
USER taskmesh

ENTRYPOINT ["taskmesh"]
CMD ["--help"]
