"""The weekly digest: a room an admin switched it on in (``!iwant digest on``) gets its
pool's figures of the past week once a week, with a chart's data that the chat side draws
where the platform takes images.

Several processes may share one database: each due digest is claimed in a unit of work
(``UnitOfWork.due_digests``), its note written to the outbox and its next time saved in the
same one, so exactly one process writes it and delivery sends it once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from . import messages as msg
from . import stats
from .clock import Clock
from .errors import UserError
from .identity import check_person
from .model import Changes, DigestRoom, NewOutbox, Person
from .settings import WEEKDAYS, Settings
from .storage.protocol import Storage

#: Digests written in one unit of work of the sweep.
DIGEST_BATCH = 20
PERIOD = "week"


def next_time(after: datetime, weekday: int, hour: int, zone: ZoneInfo) -> datetime:
    """The first ``weekday`` at ``hour`` o'clock in ``zone`` strictly after ``after``."""
    local = after.astimezone(zone)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    while True:
        moment = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
        if moment > after:
            return moment.astimezone(after.tzinfo)
        day += timedelta(days=7)


class Digests:
    """Switching a room's digest on and off, and sending the due ones."""

    def __init__(self, storage: Storage, clock: Clock, settings: Settings) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.default_timezone)

    def when(self) -> str:
        s = self.settings
        day = WEEKDAYS[s.digest_weekday].capitalize()
        return f"on {day}s at {s.digest_hour:02d}:00 ({s.default_timezone})"

    def next_at(self, after: datetime) -> datetime:
        s = self.settings
        return next_time(after, s.digest_weekday, s.digest_hour, self.zone)

    def set(self, person: Person, room: str | None, args: str, admin: bool) -> str:
        """``!iwant digest on|off`` in a room, by an admin; without a word, whether it is on."""
        check_person(person)
        word = args.strip().lower()
        if word not in ("", "on", "off"):
            raise UserError("Say !iwant digest on (the week's figures here, weekly) or off.")
        if room is None:
            raise UserError(
                "A digest goes to a room: say !iwant digest on in the room that should get it."
            )
        where = f"{person.platform}:{room}"
        if not word:
            with self.storage.transaction() as uow:
                found = uow.digest(where)
            if found is None:
                return "This room gets no weekly digest (an admin can say !iwant digest on)."
            following = msg.date_text(found.next_at.astimezone(self.zone))
            return f"This room gets the weekly digest, {self.when()}; next on {following}."
        if not admin:
            raise UserError(
                "Only the bot's admins switch a room's weekly digest; ask one, or see the "
                "figures now with !iwant stats."
            )
        now = self.clock.now()
        with self.storage.transaction() as uow:
            if word == "off":
                dropped = uow.drop_digest(where)
            else:
                found = uow.digest(where)
                pool = self.settings.pool_of(where)
                uow.save_digest(
                    DigestRoom(
                        where, pool, self.next_at(now), found.last_sent_at if found else None
                    )
                )
        if word == "off":
            return (
                "This room gets no weekly digest any more."
                if dropped
                else "This room got no weekly digest; nothing changed."
            )
        return f"This room gets the week's figures {self.when()}. !iwant digest off stops it."

    def send_due(self, now: datetime | None = None, batch: int = DIGEST_BATCH) -> int:
        """Write every due digest to the outbox, each once; how many."""
        now = now or self.clock.now()
        if not self.storage.has_due_digests(now):
            return 0
        sent = 0
        zone = self.zone
        since, until = stats.period_range(PERIOD, now)
        while True:
            with self.storage.transaction() as uow:
                due = uow.due_digests(now, batch)
                changes = Changes()
                for digest in due:
                    # The room's pool as plugins.cfg says now (rooms may have been joined).
                    pool = self.settings.pool_of(digest.room)
                    rows = self.storage.stats([pool], since, until, zone.key)
                    body = "Weekly digest\n" + stats.text(rows, "in this room", PERIOD, zone)
                    last = msg.date_text(until.astimezone(zone))
                    title = f"Wishes per day, the week to {last}"
                    chart = stats.chart(rows, since, until, zone, title)
                    changes.outbox.append(NewOutbox(digest.room, body, chart=chart))
                    uow.save_digest(replace(digest, next_at=self.next_at(now), last_sent_at=now))
                if changes:
                    uow.apply(changes, now)
                sent += len(due)
            if len(due) < batch:
                return sent
