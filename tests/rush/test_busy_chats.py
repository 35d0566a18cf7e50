"""A lunch rush queues several notes for the first members of each group: their chats are
busy while everyone else's are free. Delivery must not sleep on a busy chat while free chats
wait (issue 15: rows interleave chats fairly), nor keep looping for rows that are not due."""

from __future__ import annotations

from iwant_engine.pacing import PROMPT, Limit, Pacer, Scope

from ..support import ALICE, BOB, CAROL, DAVE, MEMORY, FakeTime, make_engine


def test_a_busy_chat_is_set_aside_while_free_chats_go(clock):
    engine = make_engine(MEMORY, clock)
    time = FakeTime()
    engine.pacer = Pacer(engine.storage.pace, clock=time, sleep=time.sleep)
    one_a_second = Limit(1.0, 1)
    # Six pairs, so six notes no newer one supersedes: Alice hears of three groups, Bob of
    # two, Carol of one (the one who completes a pair is answered, not notified).
    for first, second, wish in [
        (ALICE, BOB, "coffee 10:00"),
        (ALICE, CAROL, "tea 10:00"),
        (ALICE, DAVE, "walk 10:00"),
        (BOB, CAROL, "lunch 12:00"),
        (BOB, DAVE, "dinner 19:00"),
        (CAROL, DAVE, "coffee 15:00"),
    ]:
        engine.submit(first, wish)
        engine.submit(second, wish)

    def scopes(item):  # noqa: ANN001, ANN202
        if item.group_members is not None:
            return []
        return [Scope(f"text:bot:chat:{item.recipient}", one_a_second)]

    sent: list[str] = []

    def send(item) -> None:  # noqa: ANN001
        if item.group_members is None:
            sent.append(item.recipient)

    report = engine.deliver("text", send, scopes=scopes)

    assert time.slept == [], "no send waited for a busy chat"
    assert sorted(sent) == sorted([ALICE.id, BOB.id, CAROL.id]), "one each, at once"
    assert report.deferred == 3, "Alice's second and third, Bob's second: given back"
    assert engine.deliver("text", send, scopes=scopes).delivered == 0, "not due yet"

    clock.advance(seconds=1)
    time.sleep(1.0)
    second = engine.deliver("text", send, scopes=scopes)
    assert second.delivered == 2 and second.deferred == 1  # Alice's second, Bob's second
    clock.advance(seconds=1)
    time.sleep(1.0)
    third = engine.deliver("text", send, scopes=scopes)
    assert (third.delivered, third.deferred) == (1, 0)
    assert sent.count(ALICE.id) == 3 and sent.count(BOB.id) == 2
    assert engine.storage.counts()["outbox_pending"] == 0
    engine.close()


def test_a_slot_just_ahead_is_waited_for():
    """The bot's own pace (the next slot a fraction of a second ahead) is waited for, not
    given back: that is the rate itself."""
    time = FakeTime()
    book: dict[str, float] = {}

    def pace(keys, step):  # noqa: ANN001, ANN202
        book.update(step({k: book[k] for k in keys if k in book}))

    pacer = Pacer(pace, clock=time, sleep=time.sleep)
    bot = [Scope("t:b:bot", Limit(10.0, 1))]
    assert pacer.reserve(bot, PROMPT) == (time.now, True)
    slot, reserved = pacer.reserve(bot, PROMPT)
    assert reserved and slot == time.now + 0.1
