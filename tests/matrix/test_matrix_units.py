"""The Matrix backend without a homeserver: its text rules, ids, budgets and what it hands
errbot from a sync (once per event, nothing from before it joined), on matrix-nio's own
event objects."""

from __future__ import annotations

import asyncio
import json
import re
import types
from pathlib import Path
from typing import Any

import nio  # type: ignore[import-untyped]
import pytest
from errbot.bootstrap import bot_config_defaults
from iwant_matrix.backend import GROUP_MAX, IWantMatrixBackend
from iwant_matrix.ids import MatrixPerson, MatrixRoom, MatrixRoomOccupant, parse_user
from iwant_matrix.store import Session, SyncToken
from iwant_matrix.text import (
    MATRIX_TOKEN,
    mentioned,
    mentions,
    reaction_command,
    retry_after,
    split_text,
    strip_reply_fallback,
)
from iwant_platform import redaction
from iwant_platform.contract import Outgoing, Spend

from iwant_engine.pacing import Limit

BOT = "@iwant:localhost"
ANN = "@ann:localhost"
DM = "!dm:localhost"
ROOM = "!room:localhost"

# -- text -------------------------------------------------------------------------------------


def test_a_named_person_is_mentioned_by_user_id_and_only_as_a_whole_word() -> None:
    names = {ANN: "Ann", "@bo:localhost": "Bo", "@x:localhost": "<b>Eve</b>\u202e"}
    assert mentioned("Ann joins you for chess", names) == [ANN]
    assert mentioned("Annie and Bob", names) == []
    assert mentioned("with @ann:localhost", names) == [ANN]
    assert mentioned("<b>Eve</b> joins you", names) == ["@x:localhost"]  # shown name, no RLO


def test_m_mentions_never_pings_the_room() -> None:
    assert mentions([ANN, ANN]) == {"user_ids": [ANN]}
    assert mentions([]) == {"user_ids": []}


def test_a_cross_reaction_runs_the_written_cancel_command() -> None:
    text = "Waiting for chess company at 14:00.\nCancel: !iwant cancel #12"
    assert reaction_command(text, "\u274c", "!") == "iwant cancel #12"
    assert reaction_command(text, "\u274c\ufe0f", "!") == "iwant cancel #12"
    assert reaction_command(text, "\u2705", "!") is None  # nothing to confirm
    assert reaction_command(text, "\U0001f44d", "!") is None
    standing = "Every weekday: lunch 12:00 (!iwant stop 1 ends it)."
    assert reaction_command(standing, "\u274c", "!") == "iwant stop 1"


def test_a_check_reaction_runs_the_one_other_command_only() -> None:
    one = "Nobody yet.\nJoin coffee 10:30: !iwant coffee 10:30\nCancel: !iwant cancel #3"
    assert reaction_command(one, "\u2705", "!") == "iwant coffee 10:30"
    two = one + "\nJoin coffee 11:00: !iwant coffee 11:00"
    assert reaction_command(two, "\u2705", "!") is None  # which one? none


def test_reply_fallbacks_are_dropped() -> None:
    assert strip_reply_fallback("> <@bot:x> Waiting\n> more\n\n!iwant cancel") == "!iwant cancel"
    assert strip_reply_fallback("!iwant coffee") == "!iwant coffee"


def test_long_texts_are_split_at_lines() -> None:
    text = "\n".join("x" * 50 for _ in range(100))
    parts = split_text(text, 1000)
    assert all(len(p) <= 1000 for p in parts)
    assert "\n".join(parts).replace("\n", "") == text.replace("\n", "")


def test_a_429_says_how_long_in_its_header_or_body() -> None:
    assert retry_after({"Retry-After": "3"}, 9000) == 3.0
    assert retry_after({}, 1500) == 1.5
    assert retry_after(None, None) == 5.0


def test_matrix_tokens_are_kept_out_of_logs() -> None:
    token = "syt_aXdhbnQ_SiFWkQPbdBTlJsuYzSfA_4fVq0f"
    assert MATRIX_TOKEN.search(f"token={token}")
    assert MATRIX_TOKEN.search("mct_P4uUUyJyDqKvAfrwhFLvmn2nNVJmrd_1tRUxx")
    redaction.install(IWantMatrixBackend.secret_patterns, IWantMatrixBackend.secret_variables)
    assert token not in redaction.redact(f"Authorization: Bearer {token}")


# -- ids --------------------------------------------------------------------------------------


def test_people_are_named_by_user_id() -> None:
    assert parse_user("@bob", "localhost") == "@bob:localhost"
    assert parse_user("@bob:example.org", "localhost") == "@bob:example.org"
    assert parse_user("https://matrix.to/#/@bob:example.org", "x") == "@bob:example.org"
    assert parse_user("bob", "localhost") is None
    room = MatrixRoom(ROOM)
    occupant = MatrixRoomOccupant(ANN, "Ann", room)
    assert str(occupant) == ANN and occupant.room == room
    assert MatrixPerson(ANN) == MatrixPerson(ANN, "Ann")


# -- budgets ----------------------------------------------------------------------------------


def spends(out: Outgoing) -> list[Spend]:
    return list(IWantMatrixBackend.spends(object.__new__(IWantMatrixBackend), out))


def test_budgets_stay_below_synapses_defaults() -> None:
    limits = {b.name: Limit.parse(b.limit) for b in IWantMatrixBackend.budgets}
    synapse = {  # Synapse's defaults: per second, burst
        "message": (0.2, 10),
        "room_creation": (0.016, 10),
        "invites": (0.3, 10),
        "invited": (0.003, 5),
    }
    for name, (rate, burst) in synapse.items():
        assert limits[name].rate <= rate and limits[name].burst < burst, name
    assert limits["invites"].burst >= GROUP_MAX  # one group's invites at once
    assert IWantMatrixBackend.paused_by_rate_limit == "message"


def test_what_one_notification_spends() -> None:
    # No direct chat known: the bot creates one and invites the person.
    assert spends(Outgoing(ANN)) == [
        Spend("message"),
        Spend("room_creation"),
        Spend("invites"),
        Spend("invited", ANN),
    ]
    assert spends(Outgoing(ROOM)) == [Spend("message")]
    two = (ANN, "@bo:localhost")
    assert spends(Outgoing("group:1", two, ROOM)) == [Spend("message", sends=2)]
    assert spends(Outgoing("group:1", two, None)) == [
        Spend("room_creation"),
        Spend("invites", sends=2),
        Spend("invited", ANN),
        Spend("invited", "@bo:localhost"),
        Spend("message"),
    ]
    many = tuple(f"@p{i}:localhost" for i in range(GROUP_MAX + 1))
    assert spends(Outgoing("group:1", many, None)) == []


# -- the store --------------------------------------------------------------------------------


def test_the_sync_token_is_the_accounts_own(tmp_path: Path) -> None:
    token = SyncToken(tmp_path / "sync.json")
    assert token.load(BOT) is None
    token.save(BOT, "s72_1")
    assert token.load(BOT) == "s72_1"
    assert token.load("@other:localhost") is None
    assert (tmp_path / "sync.json").stat().st_mode & 0o077 == 0
    session = Session(tmp_path / "session.json")
    session.save(BOT, "DEV", "syt_secret_secret_secret")
    assert session.load(BOT) == ("DEV", "syt_secret_secret_secret")


# -- a sync, handed to errbot -----------------------------------------------------------------


@pytest.fixture
def backend(tmp_path: Path) -> IWantMatrixBackend:
    config = types.ModuleType("config")
    config.BOT_DATA_DIR = str(tmp_path)  # type: ignore[attr-defined]
    config.BOT_IDENTITY = {  # type: ignore[attr-defined]
        "homeserver": "http://127.0.0.1:9",
        "user_id": BOT,
        "access_token": "syt_aXdhbnQ_unitunitunitunit_0000",
    }
    config.BOT_PREFIX = "!"  # type: ignore[attr-defined]
    config.BOT_ADMINS = (ANN,)  # type: ignore[attr-defined]
    config.BOT_EXTRA_PLUGIN_DIR = None  # type: ignore[attr-defined]
    bot_config_defaults(config)
    made = IWantMatrixBackend(config)
    made.handed: list[Any] = []  # type: ignore[attr-defined]
    made.callback_message = made.handed.append  # type: ignore[attr-defined,method-assign]
    made._dm_rooms[DM] = ANN
    return made


def _room(room_id: str) -> Any:
    room = nio.MatrixRoom(room_id, BOT)
    room.add_member(BOT, "iwant", None)
    room.add_member(ANN, "Ann", None)
    return room


def _text(event_id: str, body: str, **content: Any) -> Any:
    return nio.RoomMessageText.from_dict(
        {
            "type": "m.room.message",
            "event_id": event_id,
            "sender": ANN,
            "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": body, **content},
        }
    )


def _joined(event_id: str) -> Any:
    return nio.RoomMemberEvent.from_dict(
        {
            "type": "m.room.member",
            "event_id": event_id,
            "sender": BOT,
            "state_key": BOT,
            "origin_server_ts": 1,
            "content": {"membership": "join"},
            "unsigned": {"prev_content": {"membership": "invite"}},
        }
    )


def _sync(room_id: str, events: list[Any]) -> Any:
    timeline = types.SimpleNamespace(events=events, limited=False, prev_batch=None)
    rooms = types.SimpleNamespace(
        invite={}, leave={}, join={room_id: types.SimpleNamespace(timeline=timeline)}
    )
    return types.SimpleNamespace(account_data_events=[], rooms=rooms, next_batch="s2")


def _handle(backend: IWantMatrixBackend, resp: Any, history: bool = False) -> list[Any]:
    rooms = {DM: _room(DM), ROOM: _room(ROOM)}
    client = types.SimpleNamespace(rooms=rooms)
    asyncio.run(backend._handle_sync(client, resp, history=history, since="s1"))
    handed: list[Any] = backend.handed  # type: ignore[attr-defined]
    return handed


def test_an_event_seen_twice_is_handed_to_errbot_once(backend: IWantMatrixBackend) -> None:
    resp = _sync(DM, [_text("$1", "!iwant chess")])
    _handle(backend, resp)
    handed = _handle(backend, resp)  # the same events again (a re-read sync, a refilled gap)
    assert [m.body for m in handed] == ["!iwant chess"]
    message = handed[0]
    assert backend.event_id(message) == f"{DM}/$1"
    assert backend.room_id(message) is None  # a direct chat
    assert backend.person_id(message.frm) == ANN and backend.display_name(message.frm) == "Ann"


def test_a_room_message_comes_from_an_occupant(backend: IWantMatrixBackend) -> None:
    handed = _handle(backend, _sync(ROOM, [_text("$2", "> <@iwant:localhost> hi\n\n!iwant list")]))
    assert [m.body for m in handed] == ["!iwant list"]
    assert backend.room_id(handed[0]) == ROOM


def test_nothing_from_before_the_bot_joined_or_the_first_sync(backend: IWantMatrixBackend) -> None:
    assert _handle(backend, _sync(DM, [_text("$3", "!iwant old")]), history=True) == []
    events = [_text("$4", "!iwant before"), _joined("$5"), _text("$6", "!iwant after")]
    assert [m.body for m in _handle(backend, _sync(DM, events))] == ["!iwant after"]


def test_edits_are_not_commands(backend: IWantMatrixBackend) -> None:
    edit = _text(
        "$7", "* !iwant tea", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$1"}}
    )
    assert _handle(backend, _sync(DM, [edit])) == []


def test_a_cross_on_the_bots_message_cancels_as_the_reacting_person(
    backend: IWantMatrixBackend,
) -> None:
    backend._sent["$bot"] = "Waiting for chess company.\nCancel: !iwant cancel #7"
    reaction = nio.ReactionEvent.from_dict(
        {
            "type": "m.reaction",
            "event_id": "$8",
            "sender": ANN,
            "origin_server_ts": 1,
            "content": {
                "m.relates_to": {"rel_type": "m.annotation", "event_id": "$bot", "key": "\u274c"}
            },
        }
    )
    handed = _handle(backend, _sync(DM, [reaction]))
    assert [m.body for m in handed] == ["!iwant cancel #7"]
    assert backend.person_id(handed[0].frm) == ANN
    assert re.fullmatch(rf"{re.escape(DM)}/\$8", backend.event_id(handed[0]) or "")


# -- m.direct -----------------------------------------------------------------------------------

BEN = "@ben:localhost"


class _AccountData:
    """A homeserver's account data: each PUT of m.direct replaces it whole, and the first
    PUT takes longer than the next (two requests in flight finish out of order)."""

    def __init__(self) -> None:
        self.access_token = "t"
        self.stored: dict[str, list[str]] = {}
        self.delays = [0.05, 0.0]

    async def send(self, method: str, path: str, data: str, headers: Any) -> Any:
        content = json.loads(data)
        await asyncio.sleep(self.delays.pop(0) if self.delays else 0.0)
        self.stored = content
        return types.SimpleNamespace(status=200, release=lambda: None)


def test_m_direct_saved_for_two_chats_at_once_keeps_both(backend: IWantMatrixBackend) -> None:
    """Ann's and Ben's direct chats joined together: a restarted bot must find both in
    m.direct (a direct chat taken for a room puts the person's wishes in another pool)."""
    server = _AccountData()

    async def join_both() -> None:
        backend._client = server
        backend._m_direct_lock = asyncio.Lock()
        backend._mark_direct("!ann:localhost", ANN)
        backend._mark_direct("!ben:localhost", BEN)
        while len(asyncio.all_tasks()) > 1:
            await asyncio.sleep(0.01)

    asyncio.run(join_both())
    assert server.stored == {ANN: ["!ann:localhost"], BEN: ["!ben:localhost"]}


def test_an_older_m_direct_read_back_loses_no_direct_chat(backend: IWantMatrixBackend) -> None:
    server = _AccountData()
    server.delays = []

    async def stale_echo() -> None:
        backend._client = server
        backend._m_direct_lock = asyncio.Lock()
        backend._mark_direct("!ben:localhost", BEN)
        backend._read_m_direct({ANN: [DM]})  # the sync shows an m.direct saved before
        while len(asyncio.all_tasks()) > 1:
            await asyncio.sleep(0.01)

    asyncio.run(stale_echo())
    assert server.stored == {ANN: [DM], BEN: ["!ben:localhost"]}
