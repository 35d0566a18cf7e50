"""``!iwant stats`` and ``iwant stats --json/--csv``: a period's figures of a room's pool, of
the pools a person wished in, or (admins) of every pool."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from . import stats
from .clock import Clock
from .errors import UserError
from .identity import Identity, check_person
from .model import Person, StatsRows
from .settings import Settings
from .storage.protocol import Storage


class Reports:
    """Counts a storage makes, shown as ``stats`` says (never who)."""

    def __init__(
        self, storage: Storage, clock: Clock, settings: Settings, identity: Identity
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.identity = identity

    def figures(
        self, pools: Sequence[str] | None, period: str, zone: ZoneInfo
    ) -> tuple[StatsRows, datetime, datetime]:
        """The period's counts over ``pools`` (None: all), and its bounds."""
        since, until = stats.period_range(period, self.clock.now())
        return self.storage.stats(pools, since, until, zone.key), since, until

    def stats_text(self, person: Person, room: str | None, args: str, admin: bool) -> str:
        """``!iwant stats [all] [week|month|year]``: in a room, its pool; in a direct
        message, the pools the person wished in during the period; ``all`` (admins only),
        every pool."""
        check_person(person)
        every, period = stats.parse_args(args)
        zone = self.identity.zone_of(person)
        if every:
            if not admin:
                raise UserError(
                    "Only the bot's admins see the figures of every room; "
                    f"!iwant stats {period} shows this room's."
                )
            pools: list[str] | None = None
            where = "everywhere"
        elif room is not None:
            pools = [self.settings.pool_of(f"{person.platform}:{room}")]
            where = "in this room"
        else:
            since, _ = stats.period_range(period, self.clock.now())
            pools = self.storage.pools_of(self.identity.as_person(person).id, since)
            if not pools:
                raise UserError(
                    f"You made no wishes in the last {stats.PERIODS[period].days} days; say "
                    "!iwant stats in a room to see its figures."
                )
            where = "in the rooms you wished in" if len(pools) > 1 else "in the room you wished in"
        rows, _, _ = self.figures(pools, period, zone)
        return stats.text(rows, where, period, zone)
