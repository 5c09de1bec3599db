"""The endpoint key (taskmesh.capabilities.llm_calls.endpoint_key): what the endpoint's learnt
traits are kept under, the base URL and the model as text; kept per URL object, so a client
whose base URL is replaced gets the new one's key."""

from __future__ import annotations

from types import SimpleNamespace

import openai
import pytest

from taskmesh.capabilities import llm_calls
from taskmesh.capabilities.llm_calls import endpoint_key

pytestmark = pytest.mark.timeout(10)


def test_the_key_is_the_base_url_and_the_model() -> None:
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
    assert endpoint_key(client, "m1") == f"{client.base_url}|m1"
    assert endpoint_key(client, "m1") == f"{client.base_url}|m1"  # the kept one
    assert endpoint_key(client, "m2") == f"{client.base_url}|m2"


def test_a_replaced_base_url_gets_its_own_key() -> None:
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
    before = endpoint_key(client, "m")
    client.base_url = "http://127.0.0.2:9/v2"  # type: ignore[assignment]  # the SDK's setter
    assert endpoint_key(client, "m") == f"{client.base_url}|m" != before


def test_a_client_without_a_base_url_is_keyed_by_its_id() -> None:
    client = object()
    assert endpoint_key(client, "m") == f"{id(client)}|m"  # type: ignore[arg-type]


def test_the_kept_keys_stay_bounded() -> None:
    # Stand-ins with a base URL each: the key needs nothing else of a client.
    clients = [
        SimpleNamespace(base_url=f"http://127.0.0.1:{port}/v1")
        for port in range(1, 2 * llm_calls.ENDPOINT_KEYS_KEPT)
    ]
    for client in clients:
        assert endpoint_key(client, "m") == f"{client.base_url}|m"  # type: ignore[arg-type]
    assert len(llm_calls._ENDPOINT_KEYS) <= llm_calls.ENDPOINT_KEYS_KEPT
