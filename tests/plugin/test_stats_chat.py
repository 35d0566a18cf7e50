""" "!iwant stats" and the weekly digest as people see them on errbot's Test backend (text
only), with time moving (issue 26)."""

from __future__ import annotations

import re

import time_machine

from ..support import at
from .chat import Chat

pytest_plugins = ["errbot.backends.test"]
ROOM = "#office"


def admin(chat: Chat) -> str:
    return chat.bot.bot_config.BOT_ADMINS[0]


def a_busy_morning(chat: Chat, traveller) -> None:
    """Alice, Bob and Carol meet for coffee at 10:00 (Bob and Carol join Alice 20 minutes
    after she asked); Dave and Erin for lunch at 12:00 (Erin joins after 30 minutes); Fay
    waits for tennis alone; Gus wishes in another room. Alice and Bob answer "Did you
    meet?"."""
    chat.say_in(ROOM, "alice", "!iwant coffee 10:00")
    traveller.move_to(at(9, 20))
    chat.say_in(ROOM, "bob", "!iwant coffee 9:30-11:00")
    chat.say_in(ROOM, "carol", "!iwant coffee 9:30-11:00")
    chat.say_in(ROOM, "dave", "!iwant lunch 12:00")
    traveller.move_to(at(9, 50))
    chat.say_in(ROOM, "erin", "!iwant lunch 12:00")
    chat.say_in(ROOM, "fay", "!iwant tennis 12:00")
    chat.say_in("#elsewhere", "gus", "!iwant coffee 10:00")
    chat.tick()
    traveller.move_to(at(10, 45))
    asked = chat.tick()
    group = re.search(r"\(group #(\d+)\)", asked["alice"])[1]
    chat.say("alice", f"!iwant met #{group} all")
    chat.say("bob", f"!iwant met #{group} all")
    traveller.move_to(at(13, 30))
    chat.tick()


def test_stats_in_a_room_count_its_pool_only_and_hide_small_counts(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        a_busy_morning(chat, traveller)
        traveller.move_to(at(15, 0))
        reply, _ = chat.say_in(ROOM, "fay", "!iwant stats")
    assert reply.splitlines() == [
        "iwant in this room, the last 7 days:",
        "- wishes: 6 from 6 people; groups formed: 2",
        "- wishes that met someone: 83%; fewer than 3 people answered whether they met",
        "- median wait until a wish found company: 20 min",
        "- near misses taken: 0; first-time pairs: 4",
        "- busiest hours (UTC): 12:00 (3)",
        "- activities: coffee (3); and 2 with fewer than 3 people each",
    ], "Gus wished in another room; lunch and tennis rest on fewer than 3 people"


def test_fewer_than_three_people_show_no_figures(chat):
    with time_machine.travel(at(9, 0), tick=False):
        chat.say_in(ROOM, "alice", "!iwant coffee 10:00")
        chat.say_in(ROOM, "bob", "!iwant coffee 10:00")
        reply, _ = chat.say_in(ROOM, "bob", "!iwant stats month")
    assert reply == (
        "iwant in this room, the last 30 days:\n"
        "Wishes from fewer than 3 people, so no figures (counts only, never who)."
    )


def test_stats_all_is_for_admins_and_bad_words_get_an_example(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        a_busy_morning(chat, traveller)
        reply, _ = chat.say_in(ROOM, "bob", "!iwant stats all")
        assert reply == (
            "Only the bot's admins see the figures of every room; !iwant stats week shows "
            "this room's."
        )
        reply, _ = chat.say(admin(chat), "!iwant stats all year")
        assert reply.splitlines()[:2] == [
            "iwant everywhere, the last 365 days:",
            "- wishes: 7 from 7 people; groups formed: 2",
        ]
        reply, _ = chat.say_in(ROOM, "bob", "!iwant stats fortnight")
        assert reply == (
            "'fortnight' is not a period; try !iwant stats month (or: week, year; admins: "
            "!iwant stats all year)."
        )
        reply, _ = chat.say("bob", "!iwant stats")
        assert reply.startswith("iwant in the room you wished in, the last 7 days:")
        reply, _ = chat.say("zoe", "!iwant stats")
        assert reply == (
            "You made no wishes in the last 7 days; say !iwant stats in a room to see its figures."
        )


def test_digest_on_by_an_admin_is_sent_once_at_the_hour(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:  # Tuesday 1 Dec
        reply, _ = chat.say_in(ROOM, "bob", "!iwant digest on")
        assert reply == (
            "Only the bot's admins switch a room's weekly digest; ask one, or see the figures "
            "now with !iwant stats."
        )
        reply, _ = chat.say(admin(chat), "!iwant digest on")
        assert reply.startswith("A digest goes to a room: say !iwant digest on in the room")
        reply, _ = chat.say_in(ROOM, admin(chat), "!iwant digest on")
        assert reply == (
            "This room gets the week's figures on Mondays at 09:00 (UTC). !iwant digest off "
            "stops it."
        )
        reply, _ = chat.say_in(ROOM, "bob", "!iwant digest")
        assert reply == (
            "This room gets the weekly digest, on Mondays at 09:00 (UTC); next on Mon 7 Dec."
        )
        a_busy_morning(chat, traveller)
        traveller.move_to(at(8, 59, day=7))
        assert ROOM not in chat.tick()
        traveller.move_to(at(9, 0, day=7))
        sent = chat.tick()
        assert sent[ROOM].splitlines()[:3] == [
            "Weekly digest",
            "iwant in this room, the last 7 days:",
            "- wishes: 6 from 6 people; groups formed: 2",
        ]
        traveller.move_to(at(9, 30, day=7))
        assert ROOM not in chat.tick(), "sent once"
        reply, _ = chat.say_in(ROOM, admin(chat), "!iwant digest off")
        assert reply == "This room gets no weekly digest any more."
        traveller.move_to(at(9, 0, day=14))
        assert ROOM not in chat.tick()
        reply, _ = chat.say_in(ROOM, admin(chat), "!iwant digest weekly")
        assert reply == "Say !iwant digest on (the week's figures here, weekly) or off."
