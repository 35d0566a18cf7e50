"""Measurement 6: ``!iwant`` end to end through errbot's Test backend, against ``!echo``.

errbot (a ``TestBot`` with the repository's ``iwant_plugins``) runs in this process on the
benchmark's database (``IWANT_DATABASE_URL``). Its engine gets the benchmark's ``FixedClock``
so the same command texts mean the same windows. Each round, in this order:

1. the same command through ``Engine.submit`` directly (another person, another pool, the
   same database): the engine's own cost for exactly this command;
2. ``!iwant <command>`` pushed as a distinct person, timed until its reply is popped;
3. an untimed ``!echo`` that drains what the command delivered (notifications to the people
   it matched), so no round pays for the previous one's delivery;
4. ``!echo hello``, timed the same way: errbot's cheapest command.

Commands run in errbot's own thread one after another (``BOT_ASYNC = False``, as in the plugin
tests), so both commands are timed through the same path. Plugin overhead = (median ``!iwant``
- median engine submission) / median ``!echo``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any

from iwant_engine.engine import Person
from iwant_engine.errors import UserError

from .measure import REPO, Run, median, outcome, plugins_cfg, summary
from .progress import bar
from .workload import Shape

PLUGIN_DIR = REPO / "iwant_plugins"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pop_until(bot: Any, wanted: str, timeout: float = 30) -> list[str]:
    """Pop messages until ``wanted``; everything popped before it."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        message = bot.pop_message(timeout=max(deadline - time.monotonic(), 0.01))
        if message == wanted:
            return seen
        seen.append(message)


def unavailable() -> str | None:
    """Why the end-to-end measurement cannot run here, or None."""
    if not (PLUGIN_DIR / "iwant").is_dir():
        return f"no iwant plugin at {PLUGIN_DIR} (run from a checkout)"
    try:
        import errbot.backends.test  # noqa: F401
    except ImportError as err:
        return f"errbot is not installed ({err})"
    return None


def end_to_end(run: Run, count: int) -> dict[str, Any]:
    from errbot.backends.test import TestBot

    shape = Shape(rooms=("dm",), people=max(40, count // 2), platform="test", prefix="e")
    ops = [op for op in run.workload(6, shape).ops(count) if op.kind == "submit"]
    env = {
        "IWANT_DATABASE_URL": run.db.url,
        "IWANT_POLL_SECONDS": "3600",  # no poller rounds during the measurement
        "IWANT_TIMEZONE": run.settings.default_timezone,
    }
    cfg = plugins_cfg()
    if cfg is not None:
        env["IWANT_PLUGINS_CFG"] = str(cfg)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    if not root.handlers:  # keep errbot's logging.basicConfig from printing to the console
        root.addHandler(logging.NullHandler())
    engine_times: list[float] = []
    iwant_times: list[float] = []
    echo_times: list[float] = []
    inside_times: list[float] = []  # Engine.submit as called by the plugin, per !iwant
    iwant_sent: list[float] = []  # push until the reply is handed to the backend
    echo_sent: list[float] = []
    outcomes: dict[str, int] = {}
    mismatched = 0
    with _environment(env), bar(len(ops), f"{run.db.kind}: errbot", run.show_progress) as progress:
        progress.set_postfix_str("starting errbot")
        testbot = TestBot(
            extra_plugin_dir=str(PLUGIN_DIR),
            loglevel=logging.WARNING,
            extra_config={"BOT_ASYNC": False},
        )
        testbot.start(timeout=10)
        # errbot's Test backend forces DEBUG on the root logger; a bot runs at config.py's
        # default level (IWANT_LOG_LEVEL, INFO), so measure at that: errbot's log files get
        # INFO as in a deployed bot, its console handler only warnings (our stderr stays clean).
        root.setLevel(logging.INFO)
        for handler in root.handlers:
            if handler not in handlers and not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)
        try:
            from multiprocessing.pool import ThreadPool

            bot = testbot.bot
            bot.thread_pool = ThreadPool(1)  # TestBot.stop() closes one; BOT_ASYNC makes none
            plugin = bot.plugin_manager.get_plugin_obj_by_name("IWant")
            if plugin is None or plugin.engine is None:
                raise RuntimeError("errbot did not activate the iwant plugin")
            plugin.engine.clock = run.clock  # one clock for the plugin's engine and ours
            original_submit = plugin.engine.submit

            def submit_timed(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return original_submit(*args, **kwargs)
                finally:
                    inside_times.append(time.perf_counter() - start)

            plugin.engine.submit = submit_timed  # the same call, timed inside the plugin
            me = str(bot.bot_identifier)
            original_send = bot.send_message
            reply_sent: list[float] = []

            def send_timed(message: Any) -> None:
                if str(message.to) == me and not reply_sent:
                    reply_sent.append(time.perf_counter())
                original_send(message)

            bot.send_message = send_timed  # when the reply is handed to the backend
            for _ in range(5):  # warm up both paths
                bot.push_message("!echo warm")
                _pop_until(bot, "warm")
            progress.set_postfix_str("")
            for n, op in enumerate(ops):
                run.clock.set(op.at)
                local = op.person.split(":", 1)[1]
                direct = Person(f"test:d{local}", op.name)
                start = time.perf_counter()
                try:
                    note = run.engine.submit(direct, op.text, "e2e-direct")
                    direct_outcome = outcome(note.body)
                except UserError:
                    direct_outcome = "refused"
                engine_times.append(time.perf_counter() - start)

                bot.sender = bot.build_identifier(local)
                reply_sent.clear()
                start = time.perf_counter()
                bot.push_message(f"!iwant {op.text}")
                reply = bot.pop_message(timeout=30)
                iwant_times.append(time.perf_counter() - start)
                iwant_sent.append(reply_sent[0] - start)
                kind = outcome(reply)
                outcomes[kind] = outcomes.get(kind, 0) + 1
                mismatched += kind != direct_outcome
                bot.push_message(f"!echo sync{n}")
                _pop_until(bot, f"sync{n}")

                reply_sent.clear()
                start = time.perf_counter()
                bot.push_message("!echo hello")
                echoed = bot.pop_message(timeout=30)
                echo_times.append(time.perf_counter() - start)
                echo_sent.append(reply_sent[0] - start)
                if echoed != "hello":
                    raise RuntimeError(f"!echo answered {echoed!r}")
                progress.update(1)
        except Empty:
            raise RuntimeError("errbot did not answer within 30 s") from None
        finally:
            testbot.stop()
            root.handlers[:] = handlers
            root.setLevel(level)
    iwant_median, echo_median, engine_median = (
        median(iwant_times),
        median(echo_times),
        median(engine_times),
    )
    around = [i - e for i, e in zip(iwant_times, inside_times, strict=True)]
    around_sent = [i - e for i, e in zip(iwant_sent, inside_times, strict=True)]
    return {
        "commands": len(ops),
        "iwant_median_ms": round(iwant_median * 1000, 3),
        "echo_median_ms": round(echo_median * 1000, 3),
        "engine_median_ms": round(engine_median * 1000, 3),
        "iwant": summary(iwant_times),
        "echo": summary(echo_times),
        "engine": summary(engine_times),
        "plugin_overhead": round((iwant_median - engine_median) / echo_median, 3),
        # The same split measured inside each command: !iwant minus its own engine call.
        "engine_in_plugin_median_ms": round(median(inside_times) * 1000, 3),
        "around_engine_median_ms": round(median(around) * 1000, 3),
        "plugin_overhead_paired": round(median(around) / echo_median, 3),
        # Timed until the reply is handed to the backend instead of until it is popped: the
        # popping thread no longer waits for the GIL while the plugin delivers notifications.
        "iwant_to_reply_sent_median_ms": round(median(iwant_sent) * 1000, 3),
        "echo_to_reply_sent_median_ms": round(median(echo_sent) * 1000, 3),
        "around_engine_to_reply_sent_median_ms": round(median(around_sent) * 1000, 3),
        "plugin_overhead_reply_sent_paired": round(median(around_sent) / median(echo_sent), 3),
        "outcomes": outcomes,
        "outcome_mismatches": mismatched,
        "bot_async": False,
        "plugin_dir": str(Path(PLUGIN_DIR)),
    }
