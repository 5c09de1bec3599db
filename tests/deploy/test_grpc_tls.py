"""gRPC over TLS and mutual TLS (taskmesh/rpc/tls.py), with certificates this test makes:
real grpc.aio servers started by the services' own bootstrap, and the whole system with
every hop on mTLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskmesh.rpc import client, server
from taskmesh.rpc.tls import TlsConfig
from tests.support.checks import wait_until
from tests.support.machine import free_port

TOKEN = "tls-test-token"


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: bytes
    key: bytes
    _key: ec.EllipticCurvePrivateKey
    _name: x509.Name


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), key, subject)


def issue(ca: Issued, name: str, dns: tuple[str, ...] = ("localhost",)) -> Issued:
    """A leaf for both roles (server and client), as one certificate per service would be."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    if "localhost" in dns:
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca._name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca._key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), key, subject)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    ca = make_ca("taskmesh test CA")
    rogue = make_ca("someone else's CA")
    return {
        "ca": ca,
        "service": issue(ca, "taskmesh service"),
        "named": issue(ca, "tasks", dns=("tasks.taskmesh.svc",)),
        "rogue_ca": rogue,
        "rogue": issue(rogue, "intruder"),
    }


# --- one server -----------------------------------------------------------------------------


async def start(config: TlsConfig) -> tuple[grpc.aio.Server, int]:
    grpc_server, health, port = await server.start_server(
        f"127.0.0.1:{free_port()}", TOKEN, [], [], tls_config=config
    )
    await server.set_serving(health, [], True)
    return grpc_server, port


async def health_of(addr: str, config: TlsConfig | None) -> grpc.StatusCode | str:
    """SERVING, or the status code the call failed with. None dials plaintext."""
    channel = client.channel(addr, config or TlsConfig())
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await channel.close()


def mtls(pki: dict[str, Issued], who: str = "service", ca: str = "ca") -> TlsConfig:
    return TlsConfig(cert=pki[who].cert, key=pki[who].key, ca=pki[ca].cert)


async def test_mutual_tls_admits_a_client_with_a_certificate_from_the_ca(pki) -> None:
    grpc_server, port = await start(mtls(pki))
    try:
        assert await health_of(f"localhost:{port}", mtls(pki)) == "SERVING"
        assert await health_of(f"127.0.0.1:{port}", mtls(pki)) == "SERVING"
    finally:
        await grpc_server.stop(None)


@pytest.mark.parametrize(
    "who",
    ["plaintext", "no client certificate", "certificate from another CA", "trusts another CA"],
)
async def test_mutual_tls_refuses_every_other_client(pki, who: str) -> None:
    grpc_server, port = await start(mtls(pki))
    clients = {
        "plaintext": None,
        "no client certificate": TlsConfig(ca=pki["ca"].cert),
        "certificate from another CA": TlsConfig(
            cert=pki["rogue"].cert, key=pki["rogue"].key, ca=pki["ca"].cert
        ),
        "trusts another CA": mtls(pki, ca="rogue_ca"),
    }
    try:
        assert await health_of(f"localhost:{port}", clients[who]) == grpc.StatusCode.UNAVAILABLE
    finally:
        await grpc_server.stop(None)


async def test_tls_without_a_ca_on_the_server_serves_clients_without_certificates(pki) -> None:
    grpc_server, port = await start(TlsConfig(cert=pki["service"].cert, key=pki["service"].key))
    try:
        assert await health_of(f"localhost:{port}", TlsConfig(ca=pki["ca"].cert)) == "SERVING"
        assert await health_of(f"localhost:{port}", None) == grpc.StatusCode.UNAVAILABLE
    finally:
        await grpc_server.stop(None)


async def test_the_server_name_setting_verifies_a_certificate_named_for_another_host(pki) -> None:
    grpc_server, port = await start(mtls(pki, who="named"))
    try:
        addr = f"127.0.0.1:{port}"
        assert await health_of(addr, mtls(pki)) == grpc.StatusCode.UNAVAILABLE
        named = TlsConfig(
            cert=pki["service"].cert,
            key=pki["service"].key,
            ca=pki["ca"].cert,
            server_name="tasks.taskmesh.svc",
        )
        assert await health_of(addr, named) == "SERVING"
    finally:
        await grpc_server.stop(None)


async def test_a_client_certificate_does_not_replace_the_internal_token(pki) -> None:
    grpc_server, port = await start(mtls(pki))
    channel = client.channel(f"localhost:{port}", mtls(pki))
    try:
        call = channel.unary_unary("/taskmesh.tasks.v1.TasksService/GetJob")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(b"", timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await channel.close()
        await grpc_server.stop(None)


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GRPC_TLS_CERT": "cert.pem"}, "GRPC_TLS_KEY"),
        ({"GRPC_TLS_KEY": "key.pem"}, "GRPC_TLS_CERT"),
        ({"GRPC_TLS_CA": "missing.pem"}, "GRPC_TLS_CA"),
    ],
)
def test_an_incomplete_tls_configuration_stops_the_process_naming_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "launcher", "tasks"],
        env={"INTERNAL_AUTH_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], done.stderr


# --- the whole system -----------------------------------------------------------------------


@pytest.mark.e2e
def test_the_whole_system_runs_with_mutual_tls_on_every_grpc_hop(
    pki, stack_factory, tmp_path: Path
) -> None:
    files = {}
    for name, data in (
        ("GRPC_TLS_CERT", pki["service"].cert),
        ("GRPC_TLS_KEY", pki["service"].key),
        ("GRPC_TLS_CA", pki["ca"].cert),
    ):
        path = tmp_path / f"{name.lower()}.pem"
        path.write_bytes(data)
        path.chmod(0o600)
        files[name] = str(path)
    # Ready means the gateway's health checks of Tasks and AI passed over mTLS.
    stack = stack_factory(**files)
    http = httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=10
    )
    with http:
        response = http.post(
            "/api/v1/tasks", json={"naturalLanguage": "Renew the car insurance by next Friday"}
        )
        assert response.status_code == 202, response.text
        job_url = response.headers["Location"]

        def finished() -> bool:
            return http.get(job_url).json()["status"] in ("succeeded", "failed")

        # gateway -> tasks -> ai -> broker -> worker -> tasks, every gRPC hop on mTLS.
        wait_until(finished, 60, "the job to finish")
        assert http.get(job_url).json()["status"] == "succeeded"

    # Operator commands dial Tasks as the services do: `users list` (AdminService) on mTLS.
    listed = subprocess.run(
        [sys.executable, "-m", "launcher", "users", "list"],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert [line for line in listed.stdout.splitlines() if line.startswith("dev\t")]

    import asyncio

    for addr in (stack.tasks_addr, stack.ai_addr):
        assert asyncio.run(health_of(addr, None)) == grpc.StatusCode.UNAVAILABLE, addr
