"""Which network addresses a calendar may be read from, checked before any connection.

A calendar address comes from a chat message, so without this check anyone could make the
bot read its own host or private network (server-side request forgery). The address a host
name resolves to is checked here, and the caller connects to exactly that address, so a
second, different DNS answer (DNS rebinding) never reaches a socket.
"""

from __future__ import annotations

import ipaddress
import socket

from .provider import CalendarError, FetchLimits

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED = "the calendar address points to a private or local network, which this bot does not read"


def refused(ip: IPAddress) -> bool:
    """Whether ``ip`` is loopback, private, link-local, multicast, reserved, unspecified or
    otherwise not on the public internet (shared CGNAT space, documentation ranges)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None and refused(embedded):
            return True
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(host: str, port: int, limits: FetchLimits) -> str:
    """The one IP address to connect to for ``host``: every address the name resolves to is
    checked (one private answer among public ones refuses it all), and the first is used.

    The lookup uses the system resolver, whose own timeout applies (not ``limits``)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            found = lookup(host, port)
        except (OSError, UnicodeError):
            raise CalendarError("the calendar server's name cannot be found") from None
    if not found:
        raise CalendarError("the calendar server's name cannot be found")
    if not limits.allow_private_addresses and any(refused(ip) for ip in found):
        raise CalendarError(REFUSED)
    return str(found[0])


def lookup(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (IPv6 zone ids dropped)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
