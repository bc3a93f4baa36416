"""How a tool reaches Venus: plaintext, TLS or mTLS from the PEM files an operator passes, and an API key.

``venus send`` and ``venus canary`` take the same flags for this (see :class:`Endpoint`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from venus_grpc.settings import SettingsError

API_KEY_ENV = "VENUS_API_KEY"


def channel_credentials(ca_path: str, client_cert_path: str = "",
                        client_key_path: str = "") -> grpc.ChannelCredentials | None:
    """TLS credentials trusting the CA in ``ca_path``, presenting a client certificate for mTLS; None without a CA.

    ``client_cert_path`` is the chain (PEM) and ``client_key_path`` its key; both empty for TLS without a
    client certificate. None means plaintext, so flags left empty need no branch at the caller.
    """
    if not ca_path:
        return None
    key = Path(client_key_path).read_bytes() if client_key_path else None
    chain = Path(client_cert_path).read_bytes() if client_cert_path else None
    return grpc.ssl_channel_credentials(Path(ca_path).read_bytes(), key, chain)


def aio_channel(target: str, credentials: grpc.ChannelCredentials | None, *,
                options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to ``target``: TLS with ``credentials``, plaintext when they are None."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(options))
    return grpc.aio.secure_channel(target, credentials, options=list(options))


@dataclass(frozen=True)
class Endpoint:
    """A Venus gRPC address, the TLS credentials to reach it (None: plaintext) and the API key to send ("": none)."""

    target: str
    credentials: grpc.ChannelCredentials | None = None
    api_key: str = field(default="", repr=False)  # kept out of repr, and so of logs

    def channel(self, *, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        """A new channel to :attr:`target`."""
        return aio_channel(self.target, self.credentials, options=options)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata carrying the API key, as Venus reads it; empty without a key."""
        return (("authorization", "Bearer " + self.api_key),) if self.api_key else ()


def endpoint(target: str, *, ca_path: str = "", client_cert_path: str = "", client_key_path: str = "",
             api_key_path: str = "", environ: Mapping[str, str]) -> Endpoint:
    """The :class:`Endpoint` that the flags of the same names describe, its files read now, once.

    The API key comes from the file at ``api_key_path``, else from ``VENUS_API_KEY`` in ``environ``; never
    from a flag's value, which every user of the machine can see and which stays in shell history.
    Raises :class:`SettingsError` naming the flag of a file that cannot be read.
    """
    if (client_cert_path or client_key_path) and not (ca_path and client_cert_path and client_key_path):
        raise SettingsError("--client-cert-path and --client-key-path go together, and need --ca-path (mTLS is TLS)")
    files = {"--ca-path": ca_path, "--client-cert-path": client_cert_path, "--client-key-path": client_key_path,
             "--api-key-path": api_key_path}
    for flag, path in files.items():
        if path:
            _check_readable(flag, path)
    api_key = Path(api_key_path).read_text().strip() if api_key_path else environ.get(API_KEY_ENV, "").strip()
    return Endpoint(target, channel_credentials(ca_path, client_cert_path, client_key_path), api_key)


def _check_readable(flag: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise SettingsError(f"{flag}={path!r} is not valid: expected a readable file ({exc.strerror})") from None
