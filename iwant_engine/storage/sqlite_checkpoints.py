"""SQLite: the write-ahead log copied back into the database by a thread of its own.

In WAL mode SQLite copies the log back into the database file (a checkpoint) inside the
COMMIT that finds the log over 1,000 pages: that one submission writes a thousand pages
and waits for their ``fsync``, milliseconds more on a large database, where they lie
scattered. ``Checkpointer`` runs a passive checkpoint on its own connection and thread
after every ``EVERY`` commits, so the log rarely reaches that size and commits rarely pay
for it. A passive checkpoint waits for no lock and blocks no writer; whatever it cannot
copy yet is copied by the next one. SQLite's own checkpoint at 1,000 pages stays as it is:
should this thread fall behind or fail, the log is bounded as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Commits between two checkpoints: a submission writes about ten pages, so the log stays
#: around a third of the 1,000 pages at which a COMMIT would checkpoint it itself.
EVERY = 32


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` in a thread after every ``every`` commits
    (``committed``). ``connect`` opens the thread's connection, on its first checkpoint."""

    def __init__(self, connect: Callable[[], Any], every: int = EVERY) -> None:
        self._connect = connect
        self._every = every
        self._commits = 0
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Checkpoints run so far (what the tests and the benchmark look at).
        self.runs = 0

    def committed(self) -> None:
        """A transaction committed: every ``every``-th one asks for a checkpoint."""
        with self._lock:
            self._commits += 1
            if self._commits % self._every or self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="iwant-sqlite-checkpoint", daemon=True
                )
                self._thread.start()
        self._wanted.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wanted.set()
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        connection = None
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    if connection is None:
                        connection = self._connect()
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except Exception as err:  # the COMMIT's own checkpoint still bounds the log
                    log.warning("background WAL checkpoint failed: %s", err)
                    if connection is not None:
                        _close(connection)
                    connection = None
        finally:
            if connection is not None:
                _close(connection)


def _close(connection: Any) -> None:
    try:
        connection.close()
    except Exception as err:  # the database may be gone already (a test's temporary file)
        log.debug("closing the checkpoint connection: %s", err)
