"""The caller's address: the peer, or what ``x-forwarded-for`` says when the peer is a proxy we trust.

It lives with the transport, as a proxy-headers middleware would: admission receives one address and
never sees peers or headers.
"""

from __future__ import annotations

import functools
import ipaddress
import urllib.parse
from collections.abc import Iterable, Sequence

import grpc

from venus_grpc.settings import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(context: grpc.aio.ServicerContext, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The address of a gRPC call's client (see :func:`forwarded_client`)."""
    peer = context.peer() or ""
    if not trusted_proxies:
        return _peer_text(peer)
    forwarded = (v for k, v in (context.invocation_metadata() or ()) if k == "x-forwarded-for")
    return forwarded_client(_grpc_peer(peer), forwarded, trusted_proxies)


def forwarded_client(peer: IPAddress | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> str:
    """The client behind ``peer``; ``x-forwarded-for`` counts only when the peer is a trusted proxy.

    The header is read right to left, skipping trusted proxies: the first untrusted address is the
    client, since only that hop was written by a proxy we trust.
    """
    if peer is None or not _is_trusted(peer, trusted):
        return str(peer) if peer is not None else ""
    hops = [h.strip() for h in ",".join(forwarded_for).split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            break
        if not _is_trusted(address, trusted):
            return str(address)
    return str(peer)


@functools.lru_cache(maxsize=4096)
def _peer_text(peer: str) -> str:
    # Cached: a connection's calls share its peer, and parsing it cost ~2% of a one-event call.
    address = _grpc_peer(peer)
    return str(address) if address is not None else ""


@functools.lru_cache(maxsize=4096)
def _grpc_peer(peer: str) -> IPAddress | None:
    # grpc peers look like "ipv4:10.0.0.1:5000" or "ipv6:%5B::1%5D:5000" (or "unix:...": no address).
    kind, _, rest = urllib.parse.unquote(peer).partition(":")
    host = rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else ""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)
