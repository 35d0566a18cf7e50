"""Restarts on Matrix: the bot's (its sync token and encryption keys are in its data folder)
and the homeserver's, mid-conversation. Nothing is answered twice, nothing is lost."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from matrix_people import Loop, Person, settle
from matrix_scene import Scene
from synapse_harness import Synapse


@pytest.fixture
def scene(
    synapse: Synapse, loop: Loop, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Scene]:
    restarts_the_bot = "restarted_bot" in request.node.name
    # The bot restarted logs in with its password: its device and keys must survive too.
    made = Scene(
        synapse, loop, tmp_path, "rb" if restarts_the_bot else "rs", password=restarts_the_bot
    )
    try:
        yield made
    finally:
        made.close()


def count(person: Person, room: str, text: str) -> int:
    return sum(text in s.text for s in person.seen_in(room))


def test_a_restarted_bot_answers_nothing_twice_and_misses_nothing(
    scene: Scene, synapse: Synapse
) -> None:
    ann, ben = scene.person("Ann"), scene.person("Ben")
    ann_dm = ann.create_direct(encrypted=True)
    ben_dm = ben.create_direct(encrypted=True)
    scene.bot.start()
    scene.joined(ann_dm, ben_dm)
    ann.say(ann_dm, "!iwant yoga in 6h")
    ann.wait_for(ann_dm, "Waiting for yoga company")
    settle(lambda: ann.seen_in(ann_dm))
    assert scene.bot.stop() == 0
    ben.say(ben_dm, "!iwant yoga for 7h")  # while the bot is down (encrypted for its device)
    scene.bot.start()
    ben.wait_for(ben_dm, "Matched!")
    ann.wait_for(ann_dm, "joins you for yoga")
    settle(lambda: ann.seen_in(ann_dm))
    settle(lambda: ben.seen_in(ben_dm))
    assert count(ann, ann_dm, "Waiting for yoga") == 1
    assert count(ann, ann_dm, "joins you for yoga") == 1
    assert count(ben, ben_dm, "Matched!") == 1
    # The same device after the restart (its session and keys kept in the data folder): no
    # new login, no new device for people to see, no device of theirs trusted anew.
    token = synapse.admin.access_token
    devices = synapse.request(
        "GET", f"/_synapse/admin/v2/users/{scene.bot_id}/devices", token=token
    )
    assert devices["total"] == 2, devices  # the registration's, and the bot's own login
    log = scene.bot.log.read_text()
    devices_used = set(re.findall(r"Connected to Matrix as \S+ \(device (\w+),", log))
    assert len(devices_used) == 1, devices_used
    assert log.count("Trusting") == 2, "each person's device is trusted once, in the first run"


def test_a_synapse_restarted_mid_conversation_loses_nothing(scene: Scene, synapse: Synapse) -> None:
    ann, ben = scene.person("Ann"), scene.person("Ben")
    ann_dm = ann.create_direct(encrypted=True)
    ben_dm = ben.create_direct(encrypted=True)
    scene.bot.start()
    scene.joined(ann_dm, ben_dm)
    ann.say(ann_dm, "!iwant pilates in 6h")
    ann.wait_for(ann_dm, "Waiting for pilates company")
    ben.say(ben_dm, "!iwant pilates for 7h")
    synapse.restart()  # while the bot answers Ben and tells Ann, or just before
    ben.wait_for(ben_dm, "Matched!", timeout=90)
    ann.wait_for(ann_dm, "joins you for pilates", timeout=90)
    # And the conversation goes on.
    before = len(ann.seen_in(ann_dm))
    ann.say(ann_dm, "!iwant list")
    ann.wait_for(ann_dm, "pilates", before)
    settle(lambda: ann.seen_in(ann_dm))
    settle(lambda: ben.seen_in(ben_dm))
    assert count(ben, ben_dm, "Matched!") == 1
    assert count(ann, ann_dm, "joins you for pilates") == 1
    assert scene.bot.proc is not None and scene.bot.proc.poll() is None  # it rode it out
