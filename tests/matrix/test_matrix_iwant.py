"""iwant on Matrix end to end: a real errbot process (the iwant plugin on IWantMatrix) and
people on matrix-nio clients, against the session's real Synapse. One bot serves the module
(an admin lifted its rate limits); each test has people of its own and its own activity."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator

import nio  # type: ignore[import-untyped]
import pytest
from matrix_people import Loop, Person, Said, settle
from matrix_scene import Scene
from synapse_harness import Synapse, wait_until


@pytest.fixture(scope="module")
def scene(
    synapse: Synapse, loop: Loop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    made = Scene(synapse, loop, tmp_path_factory.mktemp("matrix-iwant"), "it")
    made.bot.start()
    try:
        yield made
    finally:
        made.close()


def direct(scene: Scene, person: Person, encrypted: bool = False) -> str:
    room = person.create_direct(encrypted=encrypted)
    scene.joined(room)
    return room


def mentioned(said: Said) -> list[str]:
    return list((said.content.get("m.mentions") or {}).get("user_ids") or [])


def test_two_people_matched_in_direct_messages(scene: Scene) -> None:
    ann, ben = scene.person("Ann"), scene.person("Ben")
    ann_dm, ben_dm = direct(scene, ann), direct(scene, ben)
    ann.say(ann_dm, "!iwant tea in 2h")
    ann.wait_for(ann_dm, "Waiting for tea company")
    before = len(ann.seen_in(ann_dm))
    ben.say(ben_dm, "!iwant tea for 3h")
    ben.wait_for(ben_dm, "Matched!")
    told = ann.wait_for(ann_dm, "joins you for tea", before)
    # The bot names Ben: his display name in the body, his user id in m.mentions.
    assert "Ben" in told.text and ben.user_id in mentioned(told), told
    # Their group gets a room of its own, both invited, both mentioned.
    rooms = wait_until(
        lambda: [r for r in ann.invited - ann.direct if ann.seen_in(r)], 60, "the group's room"
    )
    hello = ann.seen_in(rooms[0])[0]
    assert "Your tea group" in hello.text
    assert {ann.user_id, ben.user_id} <= set(mentioned(hello))
    assert {ann.user_id, ben.user_id, scene.bot_id} <= ann.members(rooms[0])
    # Nothing twice.
    assert [s.text for s in ann.seen_in(ann_dm)].count(told.text) == 1


def test_two_people_matched_in_a_room_announced_in_its_thread(scene: Scene) -> None:
    cleo, dan = scene.person("Cleo"), scene.person("Dan")
    room = cleo.create_room("Squash club", [scene.bot_id, dan.user_id])
    dan.join(room)
    scene.joined(room)
    answer = cleo.say(room, "!iwant squash in 2h")
    waiting = cleo.wait_for(room, "Waiting for squash company")
    assert waiting.text.startswith("Cleo: ") and cleo.user_id in mentioned(waiting), waiting
    assert answer
    dan.say(room, "!iwant squash for 3h")
    cleo.wait_for(room, "Matched!")

    def in_thread() -> Said | None:
        return next(
            (s for s in cleo.seen_in(room) if s.thread and "Your squash group" in s.text), None
        )

    announced: Said = wait_until(in_thread, 60, "the group announced in a thread of the room")
    root = next(s for s in cleo.seen_in(room) if s.event_id == announced.thread)
    assert "A group of 2 has formed" in root.text
    assert {cleo.user_id, dan.user_id} <= set(mentioned(announced))
    # A command written in the thread is answered in the thread.
    dan.say(room, "!iwant list", thread=announced.thread)
    listed: Said = wait_until(
        lambda: next(
            (s for s in cleo.seen_in(room) if s.thread == announced.thread and "Dan:" in s.text),
            None,
        ),
        60,
        "the answer in the thread",
    )
    assert "squash" in listed.text
    # Each is told privately too, in a direct chat the bot opens (encrypted, is_direct).
    told = cleo.wait_for(None, "joins you for squash")
    assert told.encrypted and told.room_id in cleo.direct
    assert dan.user_id in mentioned(told)


def test_an_encrypted_direct_message_is_answered_encrypted(scene: Scene, synapse: Synapse) -> None:
    eva = scene.person("Eva")
    dm = direct(scene, eva, encrypted=True)
    eva.say(dm, "!iwant chess in 2h")
    answer = eva.wait_for(dm, "Waiting for chess company")
    assert answer.encrypted
    # Synapse saw ciphertext only, both ways.
    token = synapse.admin.access_token
    path = f"/_synapse/admin/v1/rooms/{urllib.parse.quote(dm)}/messages?dir=b&limit=50"
    kinds = {e["type"] for e in synapse.request("GET", path, token=token)["chunk"]}
    assert "m.room.encrypted" in kinds and "m.room.message" not in kinds, kinds


def test_a_cross_reaction_on_the_answer_cancels(scene: Scene) -> None:
    finn = scene.person("Finn")
    dm = direct(scene, finn, encrypted=True)
    finn.say(dm, "!iwant karaoke in 2h")
    answer = finn.wait_for(dm, "Waiting for karaoke company")
    assert "Cancel: !iwant cancel #" in answer.text  # written out: Matrix has no buttons
    before = len(finn.seen_in(dm))
    finn.react(dm, answer.event_id, "\u274c")
    finn.wait_for(dm, "Cancelled: karaoke", before)
    settle(lambda: finn.seen_in(dm))
    assert sum("Cancelled" in s.text for s in finn.seen_in(dm)) == 1


def test_the_export_arrives_as_an_encrypted_file(scene: Scene, synapse: Synapse) -> None:
    gus = scene.person("Gus")
    dm = direct(scene, gus, encrypted=True)
    gus.say(dm, "!iwant walk in 2h")
    gus.wait_for(dm, "Waiting for walk company")
    gus.say(dm, "!iwant export")
    gus.wait_for(dm, "as a file, privately")
    sent = wait_until(
        lambda: next((s for s in gus.seen_in(dm) if s.content.get("msgtype") == "m.file"), None),
        60,
        "the export file",
    )
    assert sent.encrypted and sent.content["filename"] == "iwant-export.json"
    file = sent.content["file"]
    server, media = file["url"].removeprefix("mxc://").split("/", 1)
    request = urllib.request.Request(
        f"{synapse.url}/_matrix/client/v1/media/download/{server}/{media}",
        headers={"Authorization": f"Bearer {gus.account.access_token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        ciphertext = response.read()
    plain = nio.crypto.attachments.decrypt_attachment(
        ciphertext, file["key"]["k"], file["hashes"]["sha256"], file["iv"]
    )
    exported = json.loads(plain)
    assert "walk" in json.dumps(exported)
