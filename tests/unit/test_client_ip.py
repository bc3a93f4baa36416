"""Which address an event without an ``ip`` is located by."""

from __future__ import annotations

import ipaddress

from venus_grpc.server.client_address import client_ip

PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


class _Call:
    """The two things client_ip reads from a gRPC servicer context."""

    def __init__(self, peer: str, forwarded: str = "") -> None:
        self._peer = peer
        self._metadata = (("x-forwarded-for", forwarded),) if forwarded else ()

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def test_direct_caller_is_the_client() -> None:
    """Without a proxy, the peer address is the client, whatever the header says."""
    assert client_ip(_Call("ipv4:81.2.69.142:5000", "1.1.1.1"), PROXIES) == "81.2.69.142"  # type: ignore[arg-type]


def test_ipv6_peer_is_decoded() -> None:
    """grpc's percent-encoded IPv6 peers are read as plain addresses."""
    assert client_ip(_Call("ipv6:%5B2001:db8::1%5D:443"), PROXIES) == "2001:db8::1"  # type: ignore[arg-type]


def test_trusted_proxy_chain_is_read_right_to_left() -> None:
    """Behind trusted proxies, the rightmost untrusted hop is the client; spoofed left hops are ignored."""
    call = _Call("ipv4:10.0.0.2:5000", "6.6.6.6, 81.2.69.142, 10.0.0.7")
    assert client_ip(call, PROXIES) == "81.2.69.142"  # type: ignore[arg-type]


def test_malformed_forwarded_hop_falls_back_to_the_proxy() -> None:
    """A garbled header never becomes an event's address."""
    assert client_ip(_Call("ipv4:10.0.0.2:5000", "not-an-ip"), PROXIES) == "10.0.0.2"  # type: ignore[arg-type]


def test_unix_socket_peer_has_no_address() -> None:
    """A caller on a unix socket has no IP, so its events carry none."""
    assert client_ip(_Call("unix:/run/venus.sock"), PROXIES) == ""  # type: ignore[arg-type]
