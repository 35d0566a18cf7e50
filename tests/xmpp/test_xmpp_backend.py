"""IWantXMPP in this process, without a server: what it hands errbot of the stanzas a server
sends (room history, offline messages, its own reflections, a stanza twice), the ids it
gives people and rooms, and how it reads a bounce."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from iwant_platform.contract import Outgoing, RetryLater, SendError, Spend, Undeliverable
from iwant_xmpp.backend import IWantXMPPBackend, XMPPOccupant, _send_error, parse_server
from slixmpp import JID

from iwant_engine.pacing import Limit

ROOM = "lobby@conference.example.org"


class Recording(IWantXMPPBackend):
    """The backend with errbot's message handling replaced by a list."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.received: list[Any] = []

    def callback_message(self, msg: Any) -> None:
        self.received.append(msg)

    def handed(self) -> list[Any]:
        self._incoming.submit(lambda: None).result(10)  # what was handed over is in
        return self.received


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from errbot.bootstrap import bot_config_defaults

    monkeypatch.setenv("XMPP_TLS", "off")
    monkeypatch.setenv("XMPP_ROOMS", ROOM)
    config = SimpleNamespace(
        BACKEND="IWantXMPP",
        BOT_IDENTITY={"username": "iwant@example.org", "password": "pw", "server": None},
        BOT_DATA_DIR=str(tmp_path),
        BOT_ADMINS=("admin@example.org",),
        BOT_PREFIX="!",
        BOT_ASYNC=False,
    )
    bot_config_defaults(config)
    bot = Recording(config)
    muc = bot.conn.client.plugin["xep_0045"]
    # As after joining: the bot's nick, and one occupant whose real JID the room shows.
    muc.our_nicks[None][JID(ROOM)] = "iwant"
    muc.rooms[None][JID(ROOM)] = {"Ann": {"jid": JID("ann@example.org/phone"), "nick": "Ann"}}
    yield bot
    bot._incoming.shutdown(wait=False)


def stanza(bot: Any, frm: str, body: str, kind: str, sid: str = "m1", delay: str = "") -> Any:
    msg = bot.conn.client.make_message(mto="iwant@example.org", mbody=body, mtype=kind)
    msg["from"] = frm
    msg["id"] = sid
    if delay:
        msg["delay"]["stamp"] = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        msg["delay"]["from"] = delay
    return msg


def test_a_direct_message_kept_offline_is_answered_a_rooms_history_is_not(backend: Any) -> None:
    backend.incoming_message(stanza(backend, "ann@example.org/phone", "!iwant a", "chat"))
    offline = stanza(backend, "bob@example.org/pc", "!iwant b", "chat", "m2", "example.org")
    backend.incoming_message(offline)
    history = stanza(backend, f"{ROOM}/Ann", "!iwant c", "groupchat", "m3", ROOM)
    backend.incoming_message(history)
    backend.incoming_message(stanza(backend, f"{ROOM}/iwant", "Matched!", "groupchat", "m4"))
    backend.incoming_message(stanza(backend, ROOM, "the room says", "groupchat", "m5"))
    bodies = [m.body for m in backend.handed()]
    assert bodies == ["!iwant a", "!iwant b"]
    assert not any(m.delayed for m in backend.handed())


def test_a_stanza_delivered_twice_reaches_errbot_once_with_its_event_id(backend: Any) -> None:
    for _ in range(2):
        backend.incoming_message(stanza(backend, "ann@example.org/phone", "!iwant a", "chat"))
    (msg,) = backend.handed()
    assert backend.event_id(msg) == "ann@example.org/phone#m1"
    # Another sender's stanza with the same id is another event, and so is one of another
    # session of hers (some clients count ids from 1 in each session).
    backend.incoming_message(stanza(backend, "bob@example.org/pc", "!iwant a", "chat"))
    backend.incoming_message(stanza(backend, "ann@example.org/laptop", "!iwant a", "chat"))
    assert [backend.event_id(m) for m in backend.handed()] == [
        "ann@example.org/phone#m1",
        "bob@example.org/pc#m1",
        "ann@example.org/laptop#m1",
    ]


def test_people_are_bare_jids_and_a_rooms_occupant_its_real_jid_or_room_and_nick(
    backend: Any,
) -> None:
    backend.incoming_message(stanza(backend, "ann@example.org/phone", "!iwant a", "chat"))
    backend.incoming_message(stanza(backend, f"{ROOM}/Ann", "!iwant b", "groupchat", "m2"))
    backend.incoming_message(stanza(backend, f"{ROOM}/Zed", "!iwant c", "groupchat", "m3"))
    backend.incoming_message(stanza(backend, f"{ROOM}/Ann", "!iwant d", "chat", "m4"))
    dm, room_ann, room_zed, private = backend.handed()
    assert [backend.person_id(m.frm) for m in (dm, room_ann, room_zed, private)] == [
        "ann@example.org",
        "ann@example.org",  # the room shows her JID: the same person as in her DMs
        f"{ROOM}/Zed",  # the room does not show his: its own name for him
        "ann@example.org",  # a private message through the room is a direct message
    ]
    assert [backend.room_id(m) for m in (dm, room_ann, room_zed, private)] == [
        None,
        ROOM,
        ROOM,
        None,
    ]
    assert [backend.display_name(m.frm) for m in (dm, room_ann)] == ["ann", "Ann"]
    assert isinstance(room_ann.frm, XMPPOccupant) and room_ann.frm.aclattr == "ann@example.org"
    assert backend.bot_key() == "iwant@example.org"


def test_identifiers_read_back_what_the_ids_say(backend: Any) -> None:
    from errbot.backends.base import Room, RoomOccupant

    assert str(backend.build_identifier("ann@example.org")) == "ann@example.org"
    assert isinstance(backend.build_identifier(ROOM), Room)
    zed = backend.build_identifier(f"{ROOM}/Zed")
    assert isinstance(zed, RoomOccupant) and backend.person_id(zed) == f"{ROOM}/Zed"
    assert str(backend.build_identifier("@bob@example.org")) == "bob@example.org"
    for bad in ("example.org", "", "a b@c"):
        with pytest.raises(ValueError):
            backend.build_identifier(bad)


def test_a_bounce_is_read_by_its_type() -> None:
    def error(condition: str, kind: str) -> dict[str, str]:
        return {"condition": condition, "type": kind}

    blocked = _send_error("ann@example.org", error("service-unavailable", "cancel"))
    assert isinstance(blocked, Undeliverable)
    assert isinstance(_send_error("x", error("forbidden", "auth")), Undeliverable)
    later = _send_error("x", error("resource-constraint", "wait"))
    assert isinstance(later, RetryLater) and later.retry_after
    other = _send_error("x", error("not-acceptable", "modify"))
    assert type(other) is SendError


def test_the_server_setting() -> None:
    assert parse_server("127.0.0.1:5222") == ("127.0.0.1", 5222)
    assert parse_server("[::1]:5223") == ("::1", 5223)
    assert parse_server(("xmpp.example.org", 5222)) == ("xmpp.example.org", 5222)
    assert parse_server("") is None and parse_server(None) is None
    with pytest.raises(ValueError):
        parse_server("xmpp.example.org")


def test_no_budgets_unless_plugins_cfg_sets_them() -> None:

    path = Path(__file__).resolve().parents[2] / "iwant_plugins" / "iwant" / "iwant.py"
    spec = importlib.util.spec_from_file_location("iwant_plugin_for_xmpp_budgets", path)
    assert spec is not None and spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)

    assert plugin.budget_limits(IWantXMPPBackend, {}) == {}
    paced = plugin.budget_limits(IWantXMPPBackend, {"xmpp.chat": Limit(1.0, 2)})
    assert paced == {"chat": Limit(1.0, 2)}
    bare = object.__new__(IWantXMPPBackend)
    assert list(IWantXMPPBackend.spends(bare, Outgoing("ann@example.org"))) == [
        Spend("bot"),
        Spend("chat", "ann@example.org"),
    ]
    assert list(IWantXMPPBackend.spends(bare, Outgoing("g", ("a", "b")))) == []
