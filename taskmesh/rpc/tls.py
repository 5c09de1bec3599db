"""TLS for internal gRPC, off unless configured (SPEC §6 allows plaintext on a trusted network).

Settings (PEM files; see ``taskmesh.settings``):

- ``GRPC_TLS_CERT`` / ``GRPC_TLS_KEY``: this process's certificate chain and private key. A
  server (tasks, ai) serves TLS with them; a client presents them when the server asks (mTLS).
- ``GRPC_TLS_CA``: the CA bundle peers are verified against. Clients dial with TLS and check
  the server's certificate (its name must match the dialled host, or
  ``GRPC_TLS_SERVER_NAME``); servers require a client certificate signed by it (mTLS).

Giving every process the same three settings makes every hop mutually authenticated;
``INTERNAL_AUTH_TOKEN`` is still required on every call.

The process bootstrap calls :func:`configure` once; :func:`server_credentials` and
:func:`channel_credentials` then apply to every server and channel the process opens, unless
a caller passes its own :class:`TlsConfig` (tests do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass(frozen=True)
class TlsConfig:
    """PEM bytes. ``cert`` and ``key`` come together; ``ca`` alone makes a verifying client."""

    cert: bytes | None = None
    key: bytes | None = None
    ca: bytes | None = None
    #: Name to verify the server's certificate against instead of the dialled host.
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("a TLS certificate and its key come together")

    @classmethod
    def from_files(
        cls,
        cert: Path | None = None,
        key: Path | None = None,
        ca: Path | None = None,
        server_name: str | None = None,
    ) -> TlsConfig:
        """Reads the PEM files (raises OSError when one cannot be read)."""
        return cls(
            cert=cert.read_bytes() if cert else None,
            key=key.read_bytes() if key else None,
            ca=ca.read_bytes() if ca else None,
            server_name=server_name or None,
        )

    @property
    def serves_tls(self) -> bool:
        return self.cert is not None

    @property
    def dials_tls(self) -> bool:
        return self.ca is not None


#: What servers and channels of this process use when the caller passes nothing.
_process_config = TlsConfig()


def configure(config: TlsConfig) -> None:
    """Sets the TLS configuration of this process (the bootstrap calls it once, at start)."""
    global _process_config
    _process_config = config


def current() -> TlsConfig:
    return _process_config


def server_credentials(config: TlsConfig | None = None) -> grpc.ServerCredentials | None:
    """Credentials for ``add_secure_port``, or None for plaintext. With a CA, clients must
    present a certificate it signed (mTLS)."""
    config = config or _process_config
    if not config.serves_tls:
        return None
    assert config.cert is not None and config.key is not None
    return grpc.ssl_server_credentials(
        [(config.key, config.cert)],
        root_certificates=config.ca,
        require_client_auth=config.ca is not None,
    )


def channel_credentials(config: TlsConfig | None = None) -> grpc.ChannelCredentials | None:
    """Credentials for ``secure_channel``, or None for plaintext. Presents this process's
    certificate when it has one."""
    config = config or _process_config
    if not config.dials_tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=config.ca, private_key=config.key, certificate_chain=config.cert
    )


def channel_options(config: TlsConfig | None = None) -> list[tuple[str, str]]:
    config = config or _process_config
    if config.dials_tls and config.server_name:
        return [("grpc.ssl_target_name_override", config.server_name)]
    return []
