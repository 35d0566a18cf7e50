"""Standing wishes, near misses and forgetting: defects a review found, kept as tests."""

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from iwant_engine import FixedClock, Person, UserError, standing
from iwant_engine.model import LIVE

from ..support import ALICE, BOB, MEMORY, START, drain, make_engine, truncate_postgres

PRAGUE = ZoneInfo("Europe/Prague")


def test_a_skip_racing_another_process_sweep_still_skips_the_day(pg_database, monkeypatch):
    truncate_postgres(pg_database)
    pg_url = pg_database
    clock = FixedClock(datetime(2026, 10, 19, 9, 0, tzinfo=PRAGUE))  # Monday
    one, two = make_engine(pg_url, clock), make_engine(pg_url, clock)
    one.set_timezone(ALICE, "Europe/Prague")
    one.submit(ALICE, "lunch 12:00 every weekday")
    clock.set(datetime(2026, 10, 19, 12, 30, tzinfo=PRAGUE))
    replies = []
    real = standing.make_due

    def slow_make_due(*args, **kw):
        worker = threading.Thread(target=lambda: replies.append(two.skip(ALICE, "tuesday")))
        worker.start()
        time.sleep(1.0)  # skip has read the row and waits on its UPDATE
        return real(*args, **kw)

    monkeypatch.setattr(standing, "make_due", slow_make_due)
    one.sweep_standing()
    monkeypatch.setattr(standing, "make_due", real)
    time.sleep(0.5)
    tuesday = one.storage.request_by_event(standing.event_key(1, datetime(2026, 10, 20).date()))
    assert replies and replies[0].startswith("Skipping Tue 20 Oct")
    assert tuesday is None or tuesday.status not in LIVE, "skipped day's wish still live"


def test_skipped_days_are_capped_with_one_clear_line(engine):
    engine.submit(ALICE, "lunch 12:00 every day")
    for n in range(2, 12):
        engine.skip(ALICE, (START + timedelta(days=n)).date().isoformat())
    with pytest.raises(UserError, match="You skip 10 days of lunch already; pause it instead"):
        engine.skip(ALICE, (START + timedelta(days=12)).date().isoformat())


@pytest.mark.parametrize("url", ["memory", "sqlite"])
def test_a_near_miss_is_never_ones_own_group(url, tmp_path):
    engine = make_engine(MEMORY if url == "memory" else f"sqlite:///{tmp_path / 'db'}",
                         FixedClock(START))  # fmt: skip
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")  # Alice and Bob meet 10:00-10:15
    drain(engine)
    reply = engine.submit(ALICE, "coffee 10:30")  # a second coffee, after the first
    assert "10:00" not in reply.body, reply.body


AL = Person("text:@al", "Al")


@pytest.mark.parametrize("url", ["memory", "sqlite"])
def test_forgetting_al_leaves_alice_in_others_messages(url, tmp_path):
    engine = make_engine(MEMORY if url == "memory" else f"sqlite:///{tmp_path / 'db'}",
                         FixedClock(START))  # fmt: skip
    engine.submit(BOB, "coffee 10:00")
    engine.submit(ALICE, "coffee 10:00")  # Bob is told "Alice joins you ..." (queued)
    engine.submit(AL, "lunch 12:00")  # Al has nothing to do with Bob
    engine.forget(AL.id)
    assert [body for _, body in drain(engine)] == [
        "Alice joins you for coffee at 10:00–10:15 (Tue 1 Dec)."
    ]
