"""Which addresses the verifier may fetch from (issue 18, finding 2: SSRF).

A PDF anyone uploads names the URLs its certificates point at (OCSP, CRL, CA issuers). Fetching
them from inside a network would let an anonymous uploader make the server GET loopback,
intranet or cloud-metadata addresses. :func:`guarded_socket_factory` is given to aiohttp's
connector: it sees every address a connection is about to be made to (after DNS, after a
redirect, for IP literals too) and refuses loopback, link-local, private, multicast, reserved
and unspecified ones, unless they fall in the configured ``allow`` networks (the test PKI on
127.0.0.1, an intranet OCSP responder).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressRefused(OSError):
    """A fetch was about to connect to an address it may not reach."""


def parse_networks(allow: Iterable[str]) -> tuple[Network, ...]:
    """The networks of ``allow`` (``127.0.0.1``, ``10.0.0.0/8``, ``::1``); ValueError if one
    is not an address or network."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in allow)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public(address: str, allow: tuple[Network, ...] = ()) -> bool:
    """True when ``address`` (an IP literal) is a global unicast address or in ``allow``."""
    ip = _address(address)
    if any(ip in network for network in allow):
        return True
    return ip.is_global and not ip.is_multicast


def is_host_local(address: str) -> bool:
    """True for addresses that reach this host or its link only: loopback, link-local
    (169.254.169.254, the cloud metadata service, among them), unspecified, multicast."""
    ip = _address(address)
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


def guarded_socket_factory(
    allow: tuple[Network, ...],
    *,
    private_ok: bool = False,
    refused: frozenset[tuple[str, int]] = frozenset(),
) -> Callable[[Any], socket.socket]:
    """A ``socket_factory`` for ``aiohttp.TCPConnector`` that refuses, by raising
    :class:`AddressRefused` (a connection error to the client), addresses outside ``allow``
    that are not public (with ``private_ok``: only those local to this host, see
    :func:`is_host_local`), and the ``(address, port)`` pairs of ``refused`` whatever
    ``allow`` says (the server's own listening sockets)."""

    def factory(addr_info: Any) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        address, port = str(sockaddr[0]), int(sockaddr[1])
        ip = str(_address(address))
        if (ip, port) in refused:
            raise AddressRefused(f"{ip}:{port} is this server itself")
        if private_ok:
            ok = any(_address(ip) in n for n in allow) or not is_host_local(ip)
        else:
            ok = is_public(ip, allow)
        if not ok:
            raise AddressRefused(f"connecting to {ip} is not allowed")
        return socket.socket(family=family, type=kind, proto=proto)

    return factory
