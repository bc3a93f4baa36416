"""Client channels to Venus in plaintext, TLS or mTLS, from the PEM files an operator passes as flags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc


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
