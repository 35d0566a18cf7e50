"""What an operator asks of a running engine: is the database there, how deep is the outbox,
which bot processes are alive (each records a heartbeat), and ``!iwant status``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from importlib import metadata

from . import messages as msg
from .clock import Clock
from .errors import Unavailable
from .model import Beat, OutboxDepth
from .settings import Settings
from .storage.protocol import Storage

log = logging.getLogger(__name__)
#: A process seen within this long counts as alive in ``!iwant status``.
ALIVE = timedelta(minutes=1)
#: A process not seen for this long is forgotten.
FORGET = timedelta(days=1)


def version() -> str:
    """The installed iwant's version (``0.1.0``), or ``unknown`` from a bare checkout."""
    try:
        return metadata.version("iwant")
    except metadata.PackageNotFoundError:
        return "unknown"


class Operations:
    """Health, heartbeats and the status report, over the storage."""

    def __init__(self, storage: Storage, clock: Clock, settings: Settings) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings

    def storage_kind(self) -> str:
        """``sql (postgresql)``, ``sql (sqlite)``, ``memory``: never the URL (it may hold a
        password)."""
        if self.settings.storage != "sql":
            return self.settings.storage
        scheme = self.settings.database_url.split(":", 1)[0].split("+", 1)[0]
        return f"{self.settings.storage} ({scheme})"

    def problem(self) -> str | None:
        """None while the database answers, else why not, in a few words."""
        try:
            self.storage.ping()
        except Unavailable:
            return "the database is unreachable"
        except Exception as err:  # a health check says what it saw, never raises
            return f"the database failed: {type(err).__name__}"
        return None

    def outbox_depths(self) -> list[OutboxDepth]:
        return self.storage.outbox_depths()

    def beat(
        self,
        process: str,
        platform: str,
        started_at: datetime,
        last_429: tuple[datetime, float] | None = None,
    ) -> None:
        """Record that ``process`` is alive now (``Unavailable`` without the database)."""
        now = self.clock.now()
        at, seconds = last_429 if last_429 is not None else (None, None)
        beat = Beat(process, platform, version(), started_at, now, at, seconds)
        self.storage.beat(beat, now - FORGET)

    def stopped(self, process: str) -> None:
        """``process`` stops cleanly: it is no longer listed."""
        try:
            self.storage.drop_beat(process)
        except Unavailable:
            log.warning("could not remove the heartbeat of %s: database unavailable", process)

    def status_text(self) -> str:
        """``!iwant status``: version, storage, database, outbox, last 429, processes."""
        now = self.clock.now()
        problem = self.problem()
        depths: list[OutboxDepth] = []
        beats: list[Beat] = []
        if problem is None:
            try:
                depths = self.storage.outbox_depths()
                beats = self.storage.beats(now - ALIVE)
            except Unavailable:
                problem = "the database is unreachable"
        return msg.status_report(version(), self.storage_kind(), problem, depths, beats, now)
