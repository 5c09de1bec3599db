"""Webhook URLs and the addresses they may reach (SPEC §5: SSRF protection).

A URL must be ``http`` or ``https``, without credentials, and every address
its host resolves to must be a public unicast one: loopback, private (RFC
1918, RFC 4193), link-local (cloud metadata at 169.254.169.254 included),
shared (RFC 6598), multicast, unspecified and other reserved ranges are
refused unless ``WEBHOOK_ALLOW_PRIVATE`` is true. The check runs at
registration and again before every delivery; a delivery connects to the
address that was checked (``Target.address``), never resolves the name a
second time, so a DNS answer that changes in between (rebinding) cannot
lead it elsewhere.

A URL is also shown back to its owner (the listing, the console), so it must
read as what it is: no hidden characters (Unicode TR #36 §2.2: bidi controls
and invisible characters reorder or conceal what is displayed) and no host
label mixing scripts in a confusable way (UTS #39 §5.1, mixed-script
confusables: "exаmple.com" with a Cyrillic "а").
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from confusable_homoglyphs import categories, confusables

from taskmesh.hidden_chars import hidden
from taskmesh.settings import default

#: Longest URL accepted, characters (what browsers and proxies reliably carry).
MAX_URL_CHARS = 2000
#: The form a webhook URL must have, as a JSON Schema pattern the gateway enforces and its
#: OpenAPI document shows: http or https in any case (RFC 3986 §3.1; ECMA-262 patterns have
#: no case flag), then no whitespace or control character. Whether the host is acceptable
#: (public addresses only) is :func:`resolve`'s business.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f]+$"

#: Scripts that may share one host label, as UTS #39 §5.2 "Highly Restrictive" allows (what
#: browsers require before they show a name in Unicode): Japanese mixes Han, Hiragana and
#: Katakana, Chinese Han and Bopomofo, Korean Han and Hangul, each also with Latin.
#: Common (digits, hyphen) and Inherited (combining marks) characters belong to any script.
_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_ANY_SCRIPT = frozenset({"COMMON", "INHERITED"})

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedUrl(ValueError):
    """The URL may never be used; ``str(exc)`` is safe to show to its owner."""


class Unresolvable(RefusedUrl):
    """The host does not resolve now (may be transient at delivery time)."""


@dataclass(frozen=True)
class Target:
    """Where one delivery attempt goes: the checked ``address`` to connect to,
    and the ``host`` for the Host header and TLS (SNI and certificate)."""

    scheme: str
    host: str
    port: int
    #: Path and query, at least "/".
    path: str
    address: IpAddress

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> SplitResult:
    """Checks the URL's form. Raises RefusedUrl naming what is wrong."""
    if len(url) > MAX_URL_CHARS:
        raise RefusedUrl(f"must be at most {MAX_URL_CHARS} characters")
    # No hidden character (`hidden_chars.hidden`) nor whitespace: RFC 3986 §2 allows none of
    # them unencoded; percent-encoded they show as what they are.
    if any(ch.isspace() or hidden(ch) for ch in url):
        # The message names the kind, never the character: the answer stays plain text.
        raise RefusedUrl("must not contain whitespace, control or invisible formatting characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise RefusedUrl("is not a valid URL") from None
    if parts.port == 0:
        raise RefusedUrl("port must be between 1 and 65535")
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl("must be an http or https URL")
    if not parts.hostname:
        raise RefusedUrl("must name a host")
    if any(dot in parts.hostname for dot in _WIDE_FULL_STOPS):
        # IDNA (UTS #46) maps these to "." in a domain name: "localhost。" is "localhost." to a
        # resolver or a browser, but not to the checks here, which read ASCII labels.
        raise RefusedUrl("host must separate its labels with ASCII full stops")
    if "[" in parts.netloc:
        # A bracketed host is an IPv6 address (its zone id is the "%" rule's) or RFC 3986's
        # IPvFuture ("[v1.x]"), which no resolver or socket takes.
        try:
            ipaddress.IPv6Address(parts.hostname.split("%")[0])
        except ValueError:
            raise RefusedUrl("is not a valid URL") from None
    if "%" in parts.hostname:
        # Percent-escapes in a host (RFC 3986 §3.2.2 allows them in a reg-name) are decoded by
        # browsers and URL libraries ("%6c%6f%63%61%6c%68%6f%73%74" is "localhost") but not by
        # the resolver: refused, so the name checked is the name every reader sees.
        raise RefusedUrl("host must not contain percent-escapes")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("must not contain credentials")
    if parts.fragment:
        raise RefusedUrl("must not contain a fragment")
    if any(_spoofable(label) for label in _labels(parts.hostname)):
        raise RefusedUrl("host must not mix look-alike letters of different scripts")
    return parts


#: The full stops IDNA reads as label separators besides ".": ideographic, full-width and
#: half-width ideographic (UTS #46 mapping; RFC 3490 §3.1).
_WIDE_FULL_STOPS = ("\u3002", "\uff0e", "\uff61")


def _labels(host: str) -> list[str]:
    """The host's labels as displayed: an IDNA A-label ("xn--…") is read as the Unicode
    label a browser shows for it, so the encoded form cannot hide a mixed label."""
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass  # not a valid A-label: shown (and resolved) as the ASCII it is
        labels.append(label)
    return labels


def _spoofable(label: str) -> bool:
    """A label mixing scripts outside :data:`_SCRIPT_SETS` with a letter that passes for
    another script's (UTS #39 confusables data). One script alone, such as an all-Cyrillic
    "пример" or an all-Greek label, is a name in its own language and stays allowed."""
    scripts = {categories.alias(ch) for ch in label} - _ANY_SCRIPT
    if len(scripts) < 2 or any(scripts <= allowed for allowed in _SCRIPT_SETS):
        return False
    return bool(confusables.is_confusable(label))


def _literal(host: str) -> IpAddress | None:
    """The address a host written as a number stands for, or None for a name.

    Besides the dotted quad and IPv6, the shorthand IPv4 forms that URL parsers and the C
    resolver read as addresses ("127.1", "0x7f.1", "2130706433", octal "0177.0.0.1";
    WHATWG URL Standard §3.5, IPv4 parser) are read here, so whether they are loopback is
    decided without asking a resolver that might not know them."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host.isascii() and host.rstrip(".").replace(".", "").isalnum():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def _is_localhost(host: str) -> bool:
    """True for ``localhost`` and the names under it, in any case, with or without the
    root's trailing dot (RFC 6761 §6.3)."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def allowed(address: IpAddress, allow_private: bool) -> bool:
    """True for a public unicast address (or any address when ``allow_private``)."""
    if allow_private:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return allowed(embedded, allow_private)
    return address.is_global and not address.is_multicast


#: IPv6 prefixes whose last 32 bits are an IPv4 address a packet reaches: IPv4-mapped
#: (::ffff:0:0/96) and IPv4-compatible (::/96, deprecated but still routed by some stacks;
#: RFC 4291 §2.5.5), IPv4-translated (::ffff:0:0:0/96, RFC 2765) and NAT64 (64:ff9b::/96,
#: RFC 6052). 6to4 (2002::/16, RFC 3056) carries one in bits 16-48.
_TAIL_IPV4 = tuple(
    ipaddress.IPv6Network(net)
    for net in ("::ffff:0:0/96", "::/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
#: Local-use NAT64 (RFC 8215): the IPv4 address's place depends on the site's prefix length,
#: so none of it is judged public.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address wraps (``[::127.0.0.1]``, ``[2002:7f00:1::]``), to
    be judged in its place; None for a native IPv6 address (``::`` and ``::1`` included)."""
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) <= 1:  # :: and ::1 are IPv6's own unspecified and loopback addresses
        return None
    if any(address in net for net in _TAIL_IPV4):
        return ipaddress.IPv4Address(address.packed[-4:])
    return None


async def resolve(
    url: str, allow_private: bool, timeout: float = default("webhook_timeout_s")
) -> Target:
    """The address a delivery to ``url`` connects to.

    Every address the host resolves to is checked, not only the first, so a
    name with one public and one private answer is refused as a whole.
    Raises RefusedUrl (form or refused address) or Unresolvable."""
    parts = parse(url)
    host = parts.hostname or ""
    scheme = parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    literal = _literal(host)
    if literal is not None:
        addresses: list[IpAddress] = [literal]
    elif _is_localhost(host):
        # RFC 6761 §6.3: "localhost." and every name under it are the loopback address,
        # answered without asking DNS, which may not know them ("localhost.",
        # "hooks.localhost") and so must not decide that they are fine.
        addresses = [ipaddress.IPv4Address("127.0.0.1")]
    else:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError):
            raise Unresolvable("host does not resolve") from None
        addresses = []
        for info in infos:
            # Drop an IPv6 zone ("fe80::1%eth0"); the address itself decides.
            text = str(info[4][0]).split("%", 1)[0]
            address = ipaddress.ip_address(text)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise Unresolvable("host does not resolve")
    if not all(allowed(a, allow_private) for a in addresses):
        raise RefusedUrl("must not point to a loopback, private, link-local or reserved address")
    return Target(scheme, host, port, path, addresses[0])
