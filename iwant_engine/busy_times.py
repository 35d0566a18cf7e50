"""What a person's busy time does to a wish: the window loses its busy parts, and the
earliest free piece that can still hold the activity's length is kept.

Pure functions over stored busy blocks (``model.Span``, aware UTC); the strategies only ever
see the trimmed window, and nobody sees another person's busy time, only its effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from .model import Span

MASK = "•••"


def clipped(busy: Sequence[Span], start: datetime, end: datetime) -> list[Span]:
    """The busy parts inside ``[start, end)``, merged where they touch, by start."""
    parts: list[Span] = []
    for s, e in sorted(busy):
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        if parts and s <= parts[-1][1]:
            parts[-1] = (parts[-1][0], max(parts[-1][1], e))
        else:
            parts.append((s, e))
    return parts


def free_pieces(start: datetime, end: datetime, busy: Sequence[Span]) -> list[Span]:
    """``[start, end)`` without its busy parts, by start."""
    pieces: list[Span] = []
    at = start
    for s, e in clipped(busy, start, end):
        if s > at:
            pieces.append((at, s))
        at = max(at, e)
    if at < end:
        pieces.append((at, end))
    return pieces


def first_fit(
    start: datetime, end: datetime, length: timedelta, busy: Sequence[Span]
) -> Span | None:
    """The earliest free piece of ``[start, end)`` that holds ``length``, or None."""
    return next((p for p in free_pieces(start, end, busy) if p[1] - p[0] >= length), None)


def next_free(
    after: datetime, until: datetime, length: timedelta, busy: Sequence[Span]
) -> Span | None:
    """The first free piece starting at ``after`` or later (and before ``until``) that holds
    ``length``, as far as the busy blocks reach; None when there is none before ``until``."""
    return first_fit(after, until + length, length, busy)


def mask(address: str) -> str:
    """An address as a person may see it again: the scheme and host kept, the rest (the
    secret path, any user and password) hidden: ``webcal://calendar.example.com/•••``."""
    try:
        parts = urlsplit(address.strip())
        host = parts.hostname
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    return f"{parts.scheme}://{host}/{MASK}"
