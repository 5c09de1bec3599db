"""deploy/asyncapi.yaml: a valid AsyncAPI 3.0.0 document (its official JSON Schema, vendored in
tests/deploy/schemas) that says what the code does: the queues JobTopology declares, with
their arguments, and the message, properties and headers taskmesh/queue/messages.py builds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue import messages
from taskmesh.queue.topology import JobTopology
from taskmesh.settings import DEFAULT_JOB_QUEUE

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "deploy" / "asyncapi.yaml"
SCHEMA = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json"
TOPOLOGY = JobTopology(DEFAULT_JOB_QUEUE)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


class RecordingChannel:
    """Stands in for an aio-pika channel: records what JobTopology.declare asks the broker."""

    def __init__(self) -> None:
        self.declared: dict[str, dict[str, Any]] = {}

    async def declare_queue(self, name: str, *, durable: bool, arguments: dict) -> None:
        self.declared[name] = {"durable": durable, "arguments": dict(arguments)}


@pytest.fixture(scope="module")
def declared() -> dict[str, dict[str, Any]]:
    import asyncio

    channel = RecordingChannel()
    asyncio.run(TOPOLOGY.declare(channel))  # type: ignore[arg-type]
    return channel.declared


def test_the_document_is_valid_asyncapi_3(doc) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = [
        f"{list(error.absolute_path)}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(doc)
    ]
    assert errors == []
    assert doc["asyncapi"] == "3.0.0"


def queues_of(channel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Queue name -> declared arguments, expanding the delay parameter of the retry channel."""
    address = channel["address"]
    delays = channel.get("parameters", {}).get("delay", {}).get("enum")
    if delays is None:
        return {address: channel["x-queue-arguments"]}
    expanded = {}
    for delay in delays:
        arguments = {}
        for key, value in channel["x-queue-arguments"].items():
            # "{delay} * 1000": the TTL in milliseconds of the queue of that delay.
            scaled = re.fullmatch(r"\{delay\} \* (\d+)", value) if isinstance(value, str) else None
            if scaled:
                value = int(delay) * int(scaled.group(1))
            arguments[key] = value
        expanded[address.replace("{delay}", delay)] = arguments
    return expanded


def test_channels_are_exactly_the_queues_the_topology_declares_with_their_arguments(
    doc, declared
) -> None:
    documented: dict[str, dict[str, Any]] = {}
    for channel in doc["channels"].values():
        documented |= queues_of(channel)
        queue = channel["bindings"]["amqp"]["queue"]
        assert channel["bindings"]["amqp"]["is"] == "queue"
        assert queue["name"] == channel["address"]
        assert queue["durable"] is True
    assert set(documented) == set(TOPOLOGY.all_queues) == set(declared)
    for name, arguments in documented.items():
        assert arguments == declared[name]["arguments"], name
        assert declared[name]["durable"] is True
    delays = doc["channels"]["retries"]["parameters"]["delay"]["enum"]
    assert [int(d) for d in delays] == list(TOPOLOGY.retry_delays_s)


def test_the_message_is_what_the_publisher_builds(doc) -> None:
    message = doc["components"]["messages"]["CapabilityJob"]
    job = jobs_pb2.CapabilityJob(job_id="job-1", user_id="user-1", request_id="req-12345678")
    built = messages.job_message(job, attempts=2, reason="llm: 503", outcome=b"\x08\x01", waits=1)
    assert message["contentType"] == built.content_type == messages.CONTENT_TYPE
    assert message["bindings"]["amqp"]["messageType"] == built.type == messages.MESSAGE_TYPE
    properties = message["x-amqp-properties"]
    assert properties["content_type"] == built.content_type
    assert properties["type"] == built.type
    assert properties["delivery_mode"] == int(built.delivery_mode)
    assert built.message_id == job.job_id and built.correlation_id == job.request_id
    # Every header the code sets is documented, and a real message's headers fit the schema.
    header_names = {value for name, value in vars(messages).items() if name.endswith("_HEADER")}
    assert set(message["headers"]["properties"]) == header_names
    headers = {
        key: value.decode("latin-1") if isinstance(value, bytes | bytearray) else value
        for key, value in (built.headers or {}).items()
    }
    jsonschema.validate(headers, message["headers"])
    assert set(headers) <= header_names
    # The payload schema is the proto the code is generated from.
    proto = (DOCUMENT.parent / message["payload"]["schema"]["$ref"]).resolve()
    assert "message CapabilityJob {" in proto.read_text(encoding="utf-8")
    assert jobs_pb2.CapabilityJob.DESCRIPTOR.file.name == str(proto.relative_to(ROOT / "protos"))


def test_every_operation_names_a_channel_and_a_message_of_it(doc) -> None:
    for name, operation in doc["operations"].items():
        channel = resolve(doc, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/"), name
            resolve(doc, ref["$ref"])
        assert channel["address"]
    actions = {(op["channel"]["$ref"], op["action"]) for op in doc["operations"].values()}
    # Jobs are published and consumed; retries and dead letters are published by workers.
    assert {("#/channels/jobs", "send"), ("#/channels/jobs", "receive")} <= actions
    assert ("#/channels/retries", "send") in actions
    assert ("#/channels/deadLetters", "send") in actions
