"""A lunch rush on Matrix against a real Synapse under its default limits (issue 24).

``iwant_bench.rush_matrix``: a Synapse of its own, twelve people as matrix-nio clients with
encryption (their limits lifted by the admin: they are not what is measured) in three
encrypted rooms and a direct chat each, and two errbot processes of IWantMatrix (two devices
of one bot account, whose limits are Synapse's defaults: rc_message 0.2/s burst 10) on one
PostgreSQL database. An engine of this process submits the wishes; the bots deliver.
"""

from __future__ import annotations

import time

import pytest

from iwant_bench import rush, rush_matrix
from iwant_engine.pacing import Limit

pytestmark = pytest.mark.slow

PEOPLE = 12


def test_a_matrix_rush_under_synapses_default_limits(pg_database: str) -> None:
    problem = rush_matrix.unavailable()
    if problem:
        pytest.skip(problem)
    started = time.monotonic()
    side = rush_matrix.MatrixSide(lifted=False)
    result = rush.rush_platform("matrix", PEOPLE, pg_database, False, 15, side)
    print(f"{time.monotonic() - started:.0f} s: {result}")

    assert result["finished"], f"outbox not empty after {result['waited_s']} s"
    outbox = result["outbox"]
    assert outbox["given_up"] == 0 and outbox["undelivered"] == 0, outbox
    assert outbox["errors"] == [], outbox
    # Nothing lost, nothing twice: what people's clients show (decrypted) is what the outbox
    # sent, and every member of a room sees every message of the bot there.
    messages = result["messages"]
    assert messages["missing"] == 0, messages
    assert messages["extra"] == 0 and messages["duplicates"] == 0, messages
    assert messages["accepted"] == messages["expected"] > 0, messages
    matrix = result["matrix"]
    assert matrix["unread_by_members"] == 0 and matrix["undecrypted"] == 0, matrix
    assert matrix["direct_rooms_made"] == 0, "the bot made a direct chat where one was"
    # Paced, not refused: no 429, within rc_message at every second and minute.
    assert result["rate_limited"] == 0, matrix["by_kind"]
    peak = result["peaks"]["message"]
    assert peak["per_second"] <= peak["allowed_per_second"], peak
    assert peak["per_minute"] <= peak["allowed_per_minute"], peak
    # The limits bound the rush (more messages than Synapse's burst) ...
    assert result["minimum_s"] > 0, result["scope_sends"]
    # ... and it took no longer than they allow, give or take 20 %; or, at this size, than
    # the bot's own budget allows: its burst is two below Synapse's (8 of 10, headroom for
    # jitter), which costs two intervals of 5 s here, a third of the minimum.
    synapse = Limit.parse(result["limits"]["message"])
    own = Limit.parse(result["pacing_limits"]["message"])
    headroom = (synapse.burst - own.burst) * own.interval
    assert result["pacing_minimum_s"] - result["minimum_s"] <= headroom + 1e-6, result
    assert result["ratio"] <= rush.RATIO_TARGET or result["ratio_to_pacing"] <= rush.RATIO_TARGET, (
        result
    )
