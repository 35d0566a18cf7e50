"""A burst under Synapse's default rate limits (rc_message 0.2/s burst 10 per sender; the
bot's limits not lifted, its pacing the adapter's defaults): every notification arrives, the
429s Synapse answers are met (waited out, shared with the engine's pacing), and the bot's
sending keeps to the pace Synapse allows instead of hammering it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from matrix_people import Loop, settle
from matrix_scene import Scene
from synapse_harness import Synapse


@pytest.fixture
def scene(synapse: Synapse, loop: Loop, tmp_path: Path) -> Iterator[Scene]:
    made = Scene(synapse, loop, tmp_path, "rl", lifted=False)
    try:
        yield made
    finally:
        made.close()


def bot_sends(synapse: Synapse, user_id: str) -> list[tuple[datetime, int]]:
    """(when, status) of the bot's sends of events, in order (Synapse's access log)."""
    pattern = re.compile(
        r"^(\S+ \S+) - synapse\.access.*\{"
        + re.escape(user_id)
        + r"\} Processed request: .* (\d{3}) \"PUT \S+/send/",
        re.MULTILINE,
    )
    return [
        (datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), int(m.group(2)))
        for m in pattern.finditer(synapse.log.read_text())
    ]


def test_a_burst_under_synapses_default_limits_loses_nothing(
    scene: Scene, synapse: Synapse
) -> None:
    people = [scene.person(name) for name in ("Ann", "Ben", "Cleo", "Dan")]
    dms = [p.create_direct() for p in people]
    scene.bot.start()
    scene.joined(*dms)
    for person, dm in zip(people, dms, strict=True):  # one after another, at once
        person.say(dm, "!iwant bowling in 2h" if person is people[0] else "!iwant bowling for 3h")
    ann, ben, cleo, dan = people
    # Nothing lost: each hears their answer, and the last word on who is in the group (notes
    # still waiting are superseded by newer ones of the same group: "... The group: ...").
    ann.wait_for(dms[0], "Waiting for bowling company", timeout=120)
    for person, dm in ((ben, dms[1]), (cleo, dms[2]), (dan, dms[3])):
        person.wait_for(dm, "for bowling", timeout=120)
    for person, dm in ((ann, dms[0]), (ben, dms[1]), (cleo, dms[2])):
        person.wait_for(dm, "Dan join", timeout=120)
    for person, dm in zip(people, dms, strict=True):
        settle(lambda p=person, r=dm: p.seen_in(r), quiet=2.0, timeout=120)
    last = [s.text for s in ann.seen_in(dms[0])][-1]
    assert all(name in last for name in ("Ben", "Cleo", "Dan")), last
    sends = bot_sends(synapse, scene.bot_id)
    refused = [when for when, status in sends if status == 429]
    # Synapse refused some: its default burst is 10, and the burst was more.
    assert refused, "no 429: the burst did not reach Synapse's limit"
    # The bot met them: each one waited out or handed back to the engine, whose pacing
    # (12/min) then keeps the bot under Synapse's 0.2/s. A bot that retried at once would
    # collect a 429 for nearly every send past the burst.
    after = [when for when, status in sends if status == 200 and when > refused[0]]
    gaps = sorted((b - a).total_seconds() for a, b in zip(after, after[1:], strict=False))
    print(f"{len(sends)} sends, {len(refused)} 429s, gaps after the first: {gaps}")
    assert len(refused) <= 6, sends
    assert not gaps or gaps[len(gaps) // 2] >= 3.0, gaps
    # Nothing twice.
    for person, dm in zip(people, dms, strict=True):
        texts = [s.text for s in person.seen_in(dm)]
        assert len(texts) == len(set(texts)), texts
