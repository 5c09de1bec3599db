"""Which webhook URLs are refused, at registration and at delivery (SPEC §5)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from taskmesh.webhook_urls import RefusedUrl, Unresolvable, allowed, parse, resolve


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
        "https://example.com:0/hook",  # port 0 names no service: nothing can listen there
        "http://[v1.x]/hook",  # RFC 3986's IPvFuture: no socket takes it
        # Full stops IDNA reads as ".": "localhost。" is "localhost." to a resolver.
        "http://localhost\u3002/hook",
        "http://127.0.0.1\uff0e:8080/hook",
        "http://hooks\uff61localhost/hook",
        "http://example\u3002com/hook",
        "http://example.com/ho ok",
        "http://example.com/hook#frag",
        "http://%6c%6f%63%61%6c%68%6f%73%74/hook",  # "localhost", percent-encoded
        "http://localhost%2e/hook",
        "http://exa%6dple.com/hook",
        "https://example.com/" + "a" * 2001,
    ],
)
async def test_malformed_or_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(RefusedUrl):
        await resolve(url, allow_private=True)


#: URLs that would display as something else: hidden characters reorder or hide part of the
#: address, a host label mixing scripts passes for another name. Shared with the HTTP and
#: gRPC tests, which expect the same refusal there.
SPOOFING_URLS = [
    "https://example.com/h\u202e/moc.live",  # right-to-left override: shows ".../evil.com"
    "https://example.com/h\u202a/x",  # left-to-right embedding
    "https://example.com/h\u202c",  # pop directional formatting
    "https://example.com/h\u2066x\u2069",  # left-to-right isolate ... pop isolate
    "https://example.com/h\u2067x",  # right-to-left isolate
    "https://example.com/h\u2068x",  # first strong isolate
    "https://example.com/h\u200b",  # zero-width space
    "https://exa\u200dmple.com/h",  # zero-width joiner in the host
    "https://example.com/h\u2060",  # word joiner
    "https://\ufeffexample.com/h",  # byte order mark
    "https://exam\u00adple.com/h",  # soft hyphen
    "https://example.com/h\u2028x",  # line separator
    "https://example.com/h\u2029x",  # paragraph separator
    "https://example.com/h\u00a0x",  # no-break space
    "https://example.com/h\tx",  # tab
    "https://example.com/h\x85x",  # next line (C1 control)
    "https://ex\u0430mple.com/h",  # Cyrillic "а" among Latin letters
    "https://\u0440\u0430ypal.com/h",  # "раypal": Cyrillic "ра" then Latin
    "https://pay.\u0440\u0430ypal.com/h",  # the same in a subdomain
    "https://xn--ypal-43d9g.com/h",  # "раypal" as its IDNA A-label
    "https://\u03bfpenai.com/h",  # Greek omicron for "o"
]


@pytest.mark.parametrize("url", SPOOFING_URLS)
async def test_hidden_characters_and_mixed_script_look_alikes_are_refused(url: str) -> None:
    with pytest.raises(RefusedUrl) as caught:
        await resolve(url, allow_private=True)
    # Refused for its form, before any DNS lookup (not "does not resolve", which registration
    # accepts), in words that never repeat the character itself.
    assert not isinstance(caught.value, Unresolvable)
    assert str(caught.value).isascii() and str(caught.value).isprintable()


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks/taskmesh",
        "https://example.com/hooks/my%20hook?x=%E2%80%AE",  # encoded, so shown as it is
        "https://\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444/hook",  # пример.рф
        "https://xn--e1afmkfd.xn--p1ai/hook",  # the same as A-labels
        "https://\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1.gr/hook",
        "https://\u65e5\u672c\u8a9e\u30c9\u30e1\u30a4\u30f3.jp/hook",  # Han with Katakana
        "https://m\u00fcnchen.de/hook",
        "https://caf\u00e9-2.example.com:8443/hook",
        "http://[2606:4700:4700::1111]/hook",
    ],
)
def test_honest_urls_in_any_script_keep_their_form(url: str) -> None:
    assert parse(url).hostname


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
        # IPv6 forms wrapping a loopback, private or metadata IPv4 address.
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:0:127.0.0.1]/hook",
        "http://[::ffff:0:a00:1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[2002:c0a8:101::]/hook",
        "http://[64:ff9b:1::7f00:1]/hook",
        "https://198.18.0.1/hook",
        # Loopback by name, whatever a resolver says of it (RFC 6761 §6.3).
        "http://localhost./hook",
        "http://LocalHost/hook",
        "https://hooks.localhost/in",
        "http://a.b.LOCALHOST.:8080/hook",
        # Loopback and private addresses in the shorthand forms URL parsers accept.
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://0x7f.0.0.1/hook",
        "http://0177.0.0.1/hook",
        "http://127.0.0.1./hook",
        "http://10.1/hook",
        "http://0/hook",
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
    # A 6to4 or IPv4-mapped address wrapping a public IPv4 address is public too.
    for text in (
        "8.8.8.8",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "2002:5db8:d70e::1",
        "::ffff:8.8.8.8",
    ):
        assert allowed(ipaddress.ip_address(text), allow_private=False)
