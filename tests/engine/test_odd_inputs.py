"""Odd inputs to every new command: one clear line back (a UserError), never an internal
error (review findings: "29 feb" once crashed skip and pause)."""

import pytest

from iwant_engine import FixedClock, UserError

from ..support import ALICE, MEMORY, START, make_engine

INPUTS = [
    "",
    " ",
    "29 feb",
    "feb 29",
    "30 feb",
    "2026-02-30",
    "2026-13-01",
    "0 days",
    "999 weeks",
    "until 29 feb",
    "lunch 29 feb",
    "lunch",
    "lunch lunch friday",
    "#",
    "#0",
    "#99999999999999999999",
    "99999999999999999999",
    "0",
    "-1",
    "for 0d",
    "until 31 apr",
    "until 2027-12-31",
    "until yesterday",
    "lunch 12:00 every day instead of #1",
    "coffee 10:00 instead of #99999999999",
    "coffee instead of",
    "coffee 10:00 every day by 23:59",
    "coffee 23:30 every day",
    "coffee 0:00 every day",
    "coffee 10:00-9:00 every day",
    "coffee 10:00 every day every",
    "coffee 10:00 every ,",
    "coffee 10:00 every and",
    "coffee 10:00 every monday max 1",
    "coffee 10:00 every day for 0 min",
    "coffee 10:00 every day max 99999999999999999999",
    "\u202e coffee 10:00 every day",
    "coffee 24:00 every day",
    "coffee 10:00 every day instead",
    "board games",
    "a b c",
]


def ops(engine):
    return {
        "submit": lambda a: engine.submit(ALICE, a),
        "skip": lambda a: engine.skip(ALICE, a),
        "pause": lambda a: engine.pause(ALICE, a),
        "stop": lambda a: engine.stop(ALICE, a),
        "board": lambda a: engine.board(ALICE, None, a),
        "link": lambda a: engine.link(ALICE, a),
        "forget_me": lambda a: engine.forget_me(ALICE, a),
        "cancel": lambda a: engine.cancel(ALICE, a),
    }


@pytest.mark.parametrize(
    "op", ["submit", "skip", "pause", "stop", "board", "link", "forget_me", "cancel"]
)
def test_no_internal_error(op):
    clock = FixedClock(START)
    engine = make_engine(MEMORY, clock)
    engine.submit(ALICE, "lunch 12:00 every day")
    bad = []
    for text in INPUTS:
        try:
            ops(engine)[op](text)
        except UserError:
            pass
        except Exception as err:
            bad.append((text, repr(err)))
    assert bad == []
