"""Nothing listens beyond the machine unless an operator says so."""

from __future__ import annotations

import inspect
import ipaddress
import os
from pathlib import Path

import pytest

from llm_sim.cli import build_parser as sim_parser
from taskmesh import metrics
from taskmesh.settings import Settings
from tests.support.stack import Stack

LOOPBACK = "127.0.0.1"
_LISTEN = "0A"
_ADDRESS_VARIABLES = ("GATEWAY_HOST", "TASKS_GRPC_ADDR", "AI_GRPC_ADDR")


def test_every_listen_address_defaults_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in _ADDRESS_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.gateway_host == LOOPBACK
    assert settings.tasks_grpc_addr.rpartition(":")[0] == LOOPBACK
    assert settings.ai_grpc_addr.rpartition(":")[0] == LOOPBACK
    assert inspect.signature(metrics.serve).parameters["host"].default == LOOPBACK
    assert sim_parser().parse_args([]).host == LOOPBACK


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _hex_address(value: str) -> tuple[str, int]:
    """``/proc/net/tcp{,6}`` local address: little-endian 32-bit words, hex port."""
    host_hex, port_hex = value.split(":")
    raw = bytes.fromhex(host_hex)
    host = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address), int(port_hex, 16)


def _listening(inodes: set[str]) -> list[tuple[str, int]]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN and fields[9] in inodes:
                found.append(_hex_address(fields[1]))
    return found


@pytest.mark.e2e
@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_the_running_stack_listens_on_loopback_only(stack: Stack) -> None:
    inodes: set[str] = set()
    for proc in stack.stack.procs.values():
        inodes |= _socket_inodes(proc.pid)

    listening = _listening(inodes)

    ports = {port for _, port in listening}
    assert set(stack.ports.values()) <= ports, f"expected listeners missing: {listening}"
    assert {host for host, _ in listening} == {LOOPBACK}, listening
