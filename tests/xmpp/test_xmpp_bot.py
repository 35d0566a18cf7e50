"""iwant on XMPP end to end: real errbot processes (the iwant plugin on the IWantXMPP
backend), a real Prosody, and people as XMPP clients, in direct messages and in a
multi-user chat room, across a restart."""

from __future__ import annotations

import time
from collections.abc import Callable

from xmpp_harness import BotProcess, People, Prosody, wait_until

PATIENCE = 30.0


def told(people: People, jid: str, bot: str, text: str, count: int = 1) -> list[str]:
    """Wait until ``bot`` has said something containing ``text`` to ``jid`` privately."""

    def found() -> list[str]:
        bodies = [r.body for r in people.from_bot(jid, bot) if text in r.body]
        return bodies if len(bodies) >= count else []

    try:
        return wait_until(found, PATIENCE, f"{jid} to be told {text!r}")
    except AssertionError as err:
        seen = [r.body for r in people.from_bot(jid, bot)]
        raise AssertionError(f"{err}; told: {seen}") from None


def said_in(people: People, watcher: str, room: str, nick: str, text: str) -> list[str]:
    def found() -> list[str]:
        return [r.body for r in people.in_room(watcher, room, nick) if text in r.body]

    return wait_until(found, PATIENCE, f"{room} to be told {text!r}")


def settled(count: Callable[[], int]) -> int:
    """Wait until ``count()`` has not changed for a second (bounded by PATIENCE); its value."""
    value, since = count(), time.monotonic()
    deadline = since + PATIENCE
    while time.monotonic() - since < 1.0 and time.monotonic() < deadline:
        time.sleep(0.1)
        if count() != value:
            value, since = count(), time.monotonic()
    return value


def started(people: People, bot: BotProcess, room: str | None, watcher: str) -> None:
    """Start the bot; wait until it is in ``room`` (if any) and answers ``watcher``."""
    joined = people.count(people.joins, room, bot.nick) if room else 0
    bot.start()
    if room:

        def in_room() -> bool:
            bot.check_running()
            return people.count(people.joins, room, bot.nick) > joined

        wait_until(in_room, PATIENCE, "the bot to join the room")
    before = len(people.from_bot(watcher, bot.jid))
    people.say(watcher, bot.jid, "!iwant help")

    def answered() -> bool:
        bot.check_running()
        return len(people.from_bot(watcher, bot.jid)) > before

    wait_until(answered, PATIENCE, "the bot to answer !iwant help")


def test_two_people_are_matched_in_direct_messages(
    prosody: Prosody, people: People, bot_factory: Callable[..., BotProcess]
) -> None:
    ann, bob = people.connect(prosody.unique("ann")), people.connect(prosody.unique("bob"))
    bot = bot_factory(prosody.unique("iwant"))
    started(people, bot, None, ann)

    people.say(ann, bot.jid, "!iwant chess in 2h")
    (waiting,) = told(people, ann, bot.jid, "Waiting for chess company")
    assert "!iwant cancel #" in waiting  # no buttons: the command is written out
    people.say(bob, bot.jid, "!iwant chess for 3h")
    (matched,) = told(people, bob, bot.jid, "Matched!")
    assert ann.split("@")[0] in matched  # shown by their account's name
    told(people, ann, bot.jid, "joins you for chess")
    assert bot.stop() == 0


def test_two_people_are_matched_in_a_room(
    prosody: Prosody, people: People, bot_factory: Callable[..., BotProcess]
) -> None:
    room = prosody.room("lobby")
    ann, bob = people.connect(prosody.unique("ann")), people.connect(prosody.unique("bob"))
    people.join(ann, room, "Ann")
    people.join(bob, room, "Bob")
    bot = bot_factory(prosody.unique("iwant"), (room,))
    started(people, bot, room, ann)

    people.say(ann, room, "!iwant tennis in 2h", "groupchat")
    said_in(people, ann, room, bot.nick, "Waiting for tennis company")
    people.say(bob, room, "!iwant tennis for 3h", "groupchat")
    (matched,) = said_in(people, bob, room, bot.nick, "Matched!")
    assert "Ann" in matched  # the nick they have in the room
    # Ann is told privately, by the bot's own JID (not in the room, not as its occupant).
    (joins,) = told(people, ann, bot.jid, "joins you for tennis")
    assert "Bob" in joins
    assert not any("joins you" in r.body for r in people.in_room(ann, room, bot.nick))
    # The wishes were made in the room: its pool, not the direct messages'.
    cy = people.connect(prosody.unique("cy"))
    people.say(cy, bot.jid, "!iwant tennis for 3h")
    told(people, cy, bot.jid, "Waiting for tennis company")
    assert bot.stop() == 0


def test_a_restart_answers_nothing_twice_and_misses_no_direct_message(
    prosody: Prosody, people: People, bot_factory: Callable[..., BotProcess]
) -> None:
    room = prosody.room("lobby")
    ann, bob = people.connect(prosody.unique("ann")), people.connect(prosody.unique("bob"))
    people.join(ann, room, "Ann")
    people.join(bob, room, "Bob")
    bot = bot_factory(prosody.unique("iwant"), (room,))
    started(people, bot, room, ann)

    # Commands answered before the restart, in the room (its history keeps them) and privately.
    people.say(ann, room, "!iwant squash in 3h", "groupchat")
    said_in(people, bob, room, bot.nick, "Waiting for squash company")
    people.say(ann, bot.jid, "!iwant yoga in 6h")
    told(people, ann, bot.jid, "Waiting for yoga company")
    room_before = settled(lambda: len(people.in_room(bob, room, bot.nick)))
    ann_before = settled(lambda: len(people.from_bot(ann, bot.jid)))

    left = people.count(people.leaves, room, bot.nick)
    assert bot.stop() == 0
    wait_until(
        lambda: people.count(people.leaves, room, bot.nick) > left,
        PATIENCE,
        "the bot to leave the room",
    )
    people.say(bob, bot.jid, "!iwant yoga for 7h")  # kept by Prosody while the bot is down

    started(people, bot, room, bob)
    (matched,) = told(people, bob, bot.jid, "Matched!")
    assert "yoga" in matched
    told(people, ann, bot.jid, "joins you for yoga")
    # Nothing from before the restart was answered again: not the room's history, not a DM.
    assert settled(lambda: len(people.in_room(bob, room, bot.nick))) == room_before
    after = people.from_bot(ann, bot.jid)[ann_before:]
    assert [r.body for r in after if "joins you" not in r.body] == []
    assert len([r for r in people.from_bot(bob, bot.jid) if "Matched!" in r.body]) == 1
    assert bot.stop() == 0


def test_the_bot_reconnects_and_rejoins_its_room_after_the_server_restarts(
    prosody: Prosody, people: People, bot_factory: Callable[..., BotProcess]
) -> None:
    room = prosody.room("lobby")
    ann = people.connect(prosody.unique("ann"))
    people.join(ann, room, "Ann")
    bot = bot_factory(prosody.unique("iwant"), (room,))
    started(people, bot, room, ann)

    prosody.stop()
    prosody.start()
    again = People(prosody)  # people's clients do not come back by themselves; the bot does
    try:
        again.connect(ann)
        again.join(ann, room, "Ann")
        wait_until(
            lambda: again.count(again.joins, room, bot.nick), PATIENCE, "the bot back in the room"
        )
        again.say(ann, room, "!iwant darts in 3h", "groupchat")
        said_in(again, ann, room, bot.nick, "Waiting for darts company")
        bot.check_running()
    finally:
        again.close()
    assert bot.stop() == 0
