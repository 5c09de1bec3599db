"""Which webhook URLs are refused, at registration and at delivery (SPEC §5)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from taskmesh.webhook_urls import RefusedUrl, Unresolvable, allowed, resolve


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "example.com/hook",
        "http:///no-host",
        "http://user:pass@example.com/hook",
        "http://example.com:99999/hook",
        "http://example.com/ho ok",
        "http://example.com/hook#frag",
        "https://example.com/" + "a" * 2001,
    ],
)
async def test_malformed_or_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(RefusedUrl):
        await resolve(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.8.9.10:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::]/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "https://198.18.0.1/hook",
    ],
)
async def test_loopback_private_link_local_and_reserved_targets_are_refused(url: str) -> None:
    with pytest.raises(RefusedUrl, match="loopback, private, link-local or reserved"):
        await resolve(url, allow_private=False)
    # Allowed for local development with WEBHOOK_ALLOW_PRIVATE.
    assert (await resolve(url, allow_private=True)).address is not None


async def test_a_public_address_is_accepted_and_pinned() -> None:
    target = await resolve("https://93.184.215.14:8443/in?a=b", allow_private=False)
    assert target.address == ipaddress.ip_address("93.184.215.14")
    assert target.connect_url == "https://93.184.215.14:8443/in?a=b"
    assert target.host_header == "93.184.215.14:8443"


async def test_a_name_with_any_private_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def resolver(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    with pytest.raises(RefusedUrl):
        await resolve("https://mixed.example.test/hook", allow_private=False)


async def test_a_name_that_does_not_resolve_is_unresolvable() -> None:
    with pytest.raises(Unresolvable):
        await resolve("https://does-not-exist.invalid/hook", allow_private=False)


def test_public_unicast_addresses_are_allowed() -> None:
    for text in ("8.8.8.8", "93.184.215.14", "2606:4700:4700::1111"):
        assert allowed(ipaddress.ip_address(text), allow_private=False)
