"""One person across platforms (issue 14): ``!iwant link`` on every storage."""

from __future__ import annotations

import json
import re

import pytest

from iwant_engine import Person, UserError

from ..support import drain, make_engine, truncate_postgres

ANN_SLACK = Person("slack:U1", "Ann")
ANN_TG = Person("telegram:42", "Ann T")
CARL = Person("slack:U3", "Carl")
DORA = Person("telegram:44", "Dora")


def code_of(note) -> str:
    found = re.search(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b", note.body)
    assert found, note.body
    return found.group(1)


def linked(engine) -> None:
    code = code_of(engine.link(ANN_SLACK))
    reply = engine.link(ANN_TG, code)
    assert reply.body.startswith("Linked: this account and Ann on slack are one person now")


@pytest.fixture
def joined(database_url, clock):
    """Slack and Telegram rooms in one pool, so both platforms meet."""
    pools = {"slack:C1": "pool:office", "telegram:-5": "pool:office"}
    eng = make_engine(database_url, clock, pools=pools)
    yield eng
    eng.close()


def test_linked_accounts_are_one_person(joined, clock):
    engine = joined
    linked(engine)
    assert engine.submit(ANN_SLACK, "coffee 10:00", room="C1").body.startswith("Waiting")
    with pytest.raises(UserError, match="You already want coffee 10:00–10:15"):
        engine.submit(ANN_TG, "coffee 9:30-11:00", room="-5")  # never grouped with herself
    # Her ignore from Telegram keeps Carl (on Slack) away from her Slack wish too.
    engine.ignore(ANN_TG, CARL)
    assert engine.submit(CARL, "coffee 10:00", room="C1").body.startswith("Waiting")
    # One zone: set on Slack, shown on Telegram.
    engine.set_timezone(ANN_SLACK, "Europe/Prague")
    tea = engine.submit(ANN_TG, "tea 16:00", room="-5")  # 16:00 in Prague
    assert tea.to == ANN_TG.id and tea.body.startswith("Waiting for tea company at 16:00–")
    # A wish made on Telegram is answered there: Dora's match is told to the Telegram account.
    assert engine.submit(DORA, "tea 15:00", room="-5").body.startswith("Matched! You meet Ann")
    assert drain(engine, "slack") == []
    (told,) = drain(engine, "telegram")
    assert told[0] == ANN_TG.id and told[1].startswith("Dora joins you for tea at 16:00–")
    # One list, one cap, across both accounts.
    listed = engine.list_text(ANN_TG)
    assert "coffee 11:00–11:15" in listed and "tea at 16:00–16:30 (Tue 1 Dec) with Dora" in listed
    for hour in (12, 13, 14):
        engine.submit(ANN_SLACK, f"walk {hour}:00", room="C1")
    with pytest.raises(UserError, match="already have 5 open requests"):
        engine.submit(ANN_TG, "lunch 17:00", room="-5")
    doc = json.loads(engine.export(ANN_TG))
    assert doc["linked_accounts"] == [ANN_SLACK.id]
    assert len(doc["requests"]) == 5


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_link_made_elsewhere_counts_at_once(kind, request, tmp_path, clock):
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'two.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        truncate_postgres(url)
    first = make_engine(url, clock)
    second = make_engine(url, clock)  # another process of the same bot
    try:
        second.submit(ANN_TG, "coffee 10:00")  # second now believes Ann T is her own person
        second.cancel(ANN_TG, "coffee")
        code = code_of(first.link(ANN_SLACK))
        first.link(ANN_TG, code)
        first.submit(ANN_SLACK, "coffee 10:00")
        with pytest.raises(UserError, match="You already want coffee"):
            second.submit(ANN_TG, "coffee 10:00")
    finally:
        first.close()
        second.close()


def test_wrong_codes_are_refused_and_limited(engine, clock):
    code = code_of(engine.link(ANN_SLACK))
    with pytest.raises(UserError, match="That code is for your other account"):
        engine.link(ANN_SLACK, code)
    for _ in range(5):
        with pytest.raises(UserError, match="That code is wrong or has expired"):
            engine.link(ANN_TG, "AAAA-AAAA")
    with pytest.raises(UserError, match="5 wrong codes within the hour"):
        engine.link(ANN_TG, code)  # even the right one, for now
    clock.advance(minutes=61)
    with pytest.raises(UserError, match="wrong or has expired"):
        engine.link(ANN_TG, code)  # ten minutes are long over
    fresh = code_of(engine.link(ANN_SLACK))
    assert engine.link(ANN_TG, fresh.lower().replace("-", " ")).body.startswith("Linked")
    with pytest.raises(UserError, match="wrong or has expired"):
        engine.link(DORA, fresh)  # single use


def test_unlink_from_either_side(joined, clock):
    engine = joined
    linked(engine)
    assert engine.unlink(ANN_SLACK) == "Unlinked: telegram:42 is a person of its own again."
    assert engine.unlink(ANN_TG).startswith("This account is not linked")
    engine.submit(ANN_SLACK, "coffee 10:00", room="C1")
    reply = engine.submit(ANN_TG, "coffee 10:00", room="-5")  # two people again: they meet
    assert reply.body.startswith("Matched! You meet Ann")
    linked(engine)
    with pytest.raises(UserError, match="This account is linked already; !iwant unlink first"):
        engine.link(ANN_TG, code_of(engine.link(CARL)))
    assert engine.unlink(ANN_TG) == "Unlinked: telegram:42 is a person of its own again."


def test_forget_me_forgets_every_linked_account(engine, clock):
    linked(engine)
    engine.submit(ANN_TG, "coffee 10:00")
    engine.forget_me(ANN_SLACK, "me")
    clock.advance(minutes=1)
    assert engine.forget_me(ANN_SLACK, "me confirm").body.startswith("Done: I deleted 1 requests")
    assert engine.storage.person(ANN_TG.id) is None and engine.storage.person(ANN_SLACK.id) is None


def test_a_code_lasts_ten_minutes(engine, clock):
    code = code_of(engine.link(ANN_SLACK))
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(UserError, match="wrong or has expired"):
        engine.link(ANN_TG, code)
