"""A person's data in their hands (issue 14): export, forget me, retention; every storage."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select

from iwant_engine import UserError
from iwant_engine.__main__ import main
from iwant_engine.storage.schema import Base

from ..support import ALICE, BOB, CAROL, DAVE, MEMORY, at, drain


def everything_stored(engine, url: str) -> str:
    """Every value of every row of every table (or of the memory storage's state), as text."""
    if url == MEMORY:
        state = engine.storage._state
        return repr([getattr(state, f.name) for f in dataclasses.fields(state)])
    sa = create_engine(url)
    try:
        with sa.connect() as conn:
            return repr([conn.execute(select(t)).all() for t in Base.metadata.sorted_tables])
    finally:
        sa.dispose()


def test_export_has_what_is_theirs_and_of_others_only_display_names(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 9:30-11:00")  # a group with Bob
    engine.set_timezone(ALICE, "Europe/Prague")
    engine.submit(ALICE, "lunch 12:00 every weekday")
    engine.ignore(ALICE, DAVE)
    engine.submit(CAROL, "tea 15:00")  # someone else entirely
    doc = json.loads(engine.export(ALICE))
    assert doc["schema"] == "iwant-export/1"
    assert doc["person"] == {
        "id": ALICE.id,
        "display_name": "Alice",
        "timezone": "Europe/Prague",
        "platform_timezone": None,
    }
    coffee, lunch = doc["requests"]
    assert (coffee["activity"], coffee["status"], coffee["with"]) == ("coffee", "MATCHED", ["Bob"])
    assert coffee["meeting"] == [at(10).isoformat(), at(10, 15).isoformat()]
    assert (lunch["activity"], lunch["status"], lunch["with"]) == ("lunch", "PENDING", [])
    assert doc["standing_wishes"][0]["wish"] == "lunch 12:00"
    assert doc["standing_wishes"][0]["every"] == "weekday"
    assert doc["ignores"] == [DAVE.id]
    assert doc["undelivered_notifications"] == [
        "Bob joins you for coffee at 10:00–10:15 (Tue 1 Dec)."
    ]
    text = json.dumps(doc)
    assert BOB.id not in text and CAROL.id not in text and "tea" not in text


def test_forget_me_asks_then_deletes_everything_and_tells_her_groups(engine, clock, database_url):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 9:30-11:00")
    engine.submit(CAROL, "coffee 9:30-11:00")  # Alice, Bob and Carol meet at 10:00
    engine.submit(ALICE, "lunch 12:00 every weekday")
    engine.link(ALICE)  # a link code she never used
    engine.ignore(ALICE, DAVE)
    engine.ignore(DAVE, ALICE)  # Dave's entry is Dave's: it stays
    engine.set_timezone(ALICE, "Europe/Prague")
    engine.submit(DAVE, "walk 16:00")  # someone unrelated, with a notification pending
    drain(engine, "text")
    engine.submit(BOB, "tea 14:00")
    with pytest.raises(UserError, match="Say !iwant forget me first"):
        engine.forget_me(ALICE, "me confirm")
    asked = engine.forget_me(ALICE, "me")
    assert "To go ahead: !iwant forget me confirm within 5 minutes" in asked.body
    assert asked.buttons == [{"label": "Forget me", "command": "iwant forget me confirm"}]
    clock.advance(minutes=4)
    done = engine.forget_me(ALICE, "me confirm")
    assert done.body.startswith("Done: I deleted 2 requests, 1 standing wishes, 1 ignore entries")
    assert "If someone ignores you, that entry is theirs and stays" in done.body
    told = dict(drain(engine, "text"))  # told, but her name is not kept even there
    assert told[BOB.id].startswith("Someone dropped out of coffee at 10:00–10:15")
    assert told[CAROL.id].startswith("Someone dropped out of coffee at 10:00–10:15")
    # Nothing refers to her but Dave's ignore entry, and her name is gone from the rest.
    stored = everything_stored(engine, database_url)
    assert stored.count(ALICE.id) == 1, "only Dave's ignore entry names her"
    assert "Alice" not in stored
    assert engine.ignored(DAVE) == [ALICE.id]
    assert engine.list_text(ALICE).startswith("You have no open requests")
    assert json.loads(engine.export(ALICE))["requests"] == []
    # Bob and Carol still meet.
    assert "with Carol" in engine.list_text(BOB)


def test_a_delivery_between_forgets_steps_never_sends_her_name(engine, clock, monkeypatch):
    """Another process delivers after every transaction the forgetting commits: what it
    sends to her group is already nameless (the cancellations and the forgetting are one
    transaction; once they were two, and "Alice dropped out" could go out between them)."""
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 9:30-11:00")
    engine.submit(CAROL, "tea 11:00")
    engine.submit(ALICE, "tea 11:00")  # a second group, in another activity's lock
    drain(engine, "text")
    engine.forget_me(ALICE, "me")
    original = engine.storage.transaction
    sent: list[tuple[str, str]] = []
    inside = False

    @contextlib.contextmanager
    def then_deliver():
        nonlocal inside
        with original() as uow:
            yield uow
        if not inside:
            inside = True
            try:
                sent.extend(drain(engine, "text"))
            finally:
                inside = False

    monkeypatch.setattr(engine.storage, "transaction", then_deliver)
    engine.forget_me(ALICE, "me confirm")
    told = dict(sent)
    assert told[BOB.id].startswith("Someone dropped out of coffee at 10:00–10:15")
    assert told[CAROL.id].startswith("Someone dropped out of tea at 11:00–11:30")
    assert not [body for _, body in sent if "Alice" in body]


def test_a_late_confirmation_deletes_nothing(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.forget_me(ALICE, "me")
    clock.advance(minutes=6)
    with pytest.raises(UserError, match="then confirm within 5 minutes"):
        engine.forget_me(ALICE, "me confirm")
    assert "coffee" in engine.list_text(ALICE)
    with pytest.raises(UserError, match="!iwant forget me"):
        engine.forget_me(ALICE, "everything")


def test_retention_deletes_what_is_old_and_finished_only(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")  # they meet: DONE after 10:15
    engine.submit(CAROL, "tea 11:00")  # nobody: EXPIRED
    clock.set(at(12))
    engine.sweep()
    drain(engine, "text")
    clock.set(at(12) + timedelta(days=89))
    engine.sweep()
    engine.privacy.purge(force=True)  # a retention round now, whenever this process's last was
    assert engine.storage.counts() == {"DONE": 2, "EXPIRED": 1, "outbox_pending": 0}
    clock.set(at(12) + timedelta(days=91))
    engine.submit(DAVE, "coffee in 1h")  # live: kept whatever its age
    engine.sweep()
    engine.privacy.purge(force=True)
    assert engine.storage.counts() == {"PENDING": 1, "outbox_pending": 0}
    assert json.loads(engine.export(ALICE))["requests"] == []


def test_an_admin_forgets_someone_from_the_command_line(tmp_path, monkeypatch, capsys):
    from iwant_engine import FixedClock

    from ..support import START, make_engine

    url = f"sqlite:///{tmp_path / 'iwant.db'}"
    eng = make_engine(url, FixedClock(START))
    eng.submit(ALICE, "coffee 10:00")
    eng.submit(BOB, "coffee 10:00")
    eng.close()
    monkeypatch.setenv("IWANT_DATABASE_URL", url)
    assert main(["forget", ALICE.id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"iwant: forgot {ALICE.id}: ")
    assert "people 1" in out and "requests 1" in out
    assert main(["forget", "not an id"]) == 2


def test_forgetting_while_a_notification_to_her_is_being_delivered(engine, clock, database_url):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    claimed = engine.storage.claim_outbox("text", clock.now())  # another process sends
    (hers,) = [item for item in claimed if item.recipient == ALICE.id]
    engine.forget(ALICE.id)
    engine.storage.ack(hers.id, clock.now())  # its send ends after she is gone: no error
    engine.storage.fail(hers.id, clock.now(), "too late", None)
    assert ALICE.id not in everything_stored(engine, database_url)
    assert [who for who, _ in drain(engine, "text")] == [BOB.id], "Bob is told, she is not"
