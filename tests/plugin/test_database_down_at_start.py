"""A bot started while its database is away answers clearly and recovers by itself."""

from __future__ import annotations

from multiprocessing.pool import ThreadPool

import pytest
from sqlalchemy.engine import make_url

from ..multiprocess.harness import CuttableProxy
from ..support import truncate_postgres
from .chat import Chat

pytest_plugins = ["errbot.backends.test"]


@pytest.fixture(autouse=True)
def proxy(pg_database, monkeypatch):
    """PostgreSQL behind a proxy that is cut before the bot starts."""
    truncate_postgres(pg_database)
    url = make_url(pg_database)
    p = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    p.start()
    p.cut()
    monkeypatch.setenv(
        "IWANT_DATABASE_URL", url.set(port=p.port).render_as_string(hide_password=False)
    )
    monkeypatch.setenv("IWANT_POLL_SECONDS", "3600")
    monkeypatch.delenv("IWANT_PLUGINS_CFG", raising=False)
    yield p
    p.close()


def test_commands_say_unavailable_until_the_database_returns(testbot, proxy):
    testbot.bot.thread_pool = ThreadPool(1)  # see test_plugin_chat.chat
    chat = Chat(testbot)
    assert chat.plugin.engine is None
    reply, _ = chat.say("alice", "!iwant coffee for 1h")
    assert reply == (
        "iwant is temporarily unavailable; nothing was saved, please try again in a minute."
    )
    assert chat.tick() == {}  # still away: the poller keeps trying, nothing breaks
    proxy.restore()
    chat.tick()
    assert chat.plugin.engine is not None
    reply, _ = chat.say("alice", "!iwant coffee for 1h")
    assert reply.startswith("Waiting for coffee company")
