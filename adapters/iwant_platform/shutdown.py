"""What every adapter needs once: a clean stop on SIGTERM, its own event loop ended cleanly,
and 'seen this event already?'."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


def graceful_sigterm() -> None:
    """errbot shuts down cleanly on Ctrl-C only; make SIGTERM (docker stop, systemd) the
    same, unless someone already handles it. SIGINT too where the process inherited it
    ignored (a script's background job: ``errbot … &``), so that a supervisor's SIGINT
    still stops the bot cleanly instead of going unheard until a SIGKILL."""
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.default_int_handler)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signals alone
        pass


class RecentKeys:
    """A bounded set of recently seen keys: answers 'first time?' thread-safely (a
    platform's redelivery of an event it did not see acknowledged)."""

    def __init__(self, size: int = 4096) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """End an adapter's own event loop: cancel what still runs on it, let it finish, close
    its async generators, close it (after ``serve_once`` ran the platform's client there)."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> list[int]:
    """SIGTERM (systemd, docker) and SIGINT call ``stop`` on an adapter's own event loop, so
    it finishes cleanly (plugins deactivated, its position on disk); the signals it took,
    to give back with ``loop.remove_signal_handler``. Only possible on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return []
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    return installed
