"""The backend's pure helpers: splitting, command normalisation, button tokens, offsets,
identifiers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iwant_telegram.ids import PeopleDirectory, TelegramPerson, TelegramRoom, TelegramRoomOccupant
from iwant_telegram.util import (
    ButtonCommands,
    OffsetStore,
    TelegramSendError,
    TelegramUndeliverable,
    is_unreachable_chat,
    normalize_incoming,
    split_text,
    truncate_text,
    utf16_len,
)

# ------------------------------------------------------------------------------- splitting


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]


def test_split_prefers_line_breaks() -> None:
    lines = [f"line {i:04d} " + "x" * 40 for i in range(300)]  # ~14,000 characters
    parts = split_text("\n".join(lines))
    assert len(parts) == 4
    assert all(utf16_len(p) <= 4096 for p in parts)
    # Whole lines only: nothing lost, nothing cut in the middle of a line.
    assert [line for p in parts for line in p.split("\n")] == lines


def test_split_counts_utf16_units() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units, 3000 characters
    parts = split_text(text)
    assert len(parts) == 2
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts) == text  # no surrogate pair torn apart


def test_blank_text_has_no_parts() -> None:
    assert split_text("  \n ") == []


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(["a", "b", " ", "\n", "é", "😀", "中"]), max_size=400),
    st.integers(min_value=8, max_value=64),
)
def test_split_properties(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(utf16_len(p) <= limit for p in parts)
    assert all(p.strip() for p in parts)
    # Only the whitespace at the cuts may be lost.
    squash = "".join(text.split())
    assert "".join("".join(parts).split()) == squash


# ------------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("text", "is_command", "expected"),
    [
        ("/iwant coffee 10:00", True, "!iwant coffee 10:00"),
        ("/iwant@IWantTestBot coffee", True, "!iwant coffee"),
        ("/iwant@iwanttestbot coffee", True, "!iwant coffee"),  # usernames ignore case
        ("/IWANT coffee", True, "!iwant coffee"),
        ("/iwant", True, "!iwant"),
        ("/iwant\ncoffee", True, "!iwant\ncoffee"),
        ("!iwant coffee", False, "!iwant coffee"),
        ("just chatting", False, "just chatting"),
        ("/iwant coffee", False, "/iwant coffee"),  # no bot_command entity: plain text
        ("/start", True, "!iwant help"),
        ("/start somepayload", True, "!iwant help"),
    ],
)
def test_normalize_incoming(text: str, is_command: bool, expected: str) -> None:
    got = normalize_incoming(
        text,
        is_command=is_command,
        bot_username="IWantTestBot",
        prefix="!",
        aliases={"start": "iwant help"},
    )
    assert got == expected


def test_command_for_another_bot_is_ignored() -> None:
    assert (
        normalize_incoming("/iwant@OtherBot coffee", is_command=True, bot_username="IWantTestBot")
        is None
    )


# ------------------------------------------------------------------------------- buttons


def test_short_button_command_travels_as_itself(tmp_path: Path) -> None:
    buttons = ButtonCommands(tmp_path / "b.json")
    data = buttons.encode("iwant cancel #12")
    assert data == "c:iwant cancel #12"
    assert buttons.decode(data) == "iwant cancel #12"
    assert not (tmp_path / "b.json").exists()  # nothing to remember


def test_long_button_command_survives_a_restart(tmp_path: Path) -> None:
    command = "iwant cancel " + "ünïcode " * 20
    data = ButtonCommands(tmp_path / "b.json").encode(command)
    assert len(data.encode()) <= 64
    assert ButtonCommands(tmp_path / "b.json").decode(data) == command


def test_button_memory_is_bounded(tmp_path: Path) -> None:
    buttons = ButtonCommands(tmp_path / "b.json", max_entries=3)
    datas = [buttons.encode("x" * 70 + str(i)) for i in range(5)]
    assert buttons.decode(datas[0]) is None
    assert buttons.decode(datas[-1]) == "x" * 70 + "4"


@pytest.mark.parametrize("data", ["", "c:", "k:nope", "garbage"])
def test_unknown_button_data(tmp_path: Path, data: str) -> None:
    assert ButtonCommands(tmp_path / "b.json").decode(data) is None


# ------------------------------------------------------------------------------- offset


def test_offset_store_round_trip(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path / "o.json")
    assert store.load() is None
    store.save(700_005)
    assert OffsetStore(tmp_path / "o.json").load() == 700_005


def test_offset_older_than_telegram_keeps_updates_is_ignored(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path / "o.json")
    store.save(700_005)
    day_and_a_half_ago = time.time() - 36 * 3600
    os.utime(store.path, (day_and_a_half_ago, day_and_a_half_ago))
    assert store.load() is None


def test_corrupt_offset_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "o.json").write_text("{not json")
    assert OffsetStore(tmp_path / "o.json").load() is None


# ------------------------------------------------------------------------------- identifiers


def test_identifiers() -> None:
    alice = TelegramPerson(4242, "Alice", "Liddell", "alice")
    assert (str(alice), alice.person, alice.aclattr) == ("4242", "4242", "4242")
    assert (alice.fullname, alice.nick) == ("Alice Liddell", "alice")
    assert TelegramPerson(7).fullname == "7"
    assert TelegramPerson(7, username="bob").fullname == "@bob"
    room = TelegramRoom(-100123, "Coffee")
    occupant = TelegramRoomOccupant(4242, room, "Alice")
    assert str(occupant.room) == "-100123"
    assert occupant.person == "4242"
    assert alice == TelegramPerson("4242")
    assert occupant != alice  # someone in a group is not the private chat with them
    assert len({alice, TelegramPerson(4242), room, TelegramRoom(-100123)}) == 2


def test_people_directory(tmp_path: Path) -> None:
    people = PeopleDirectory(tmp_path / "p.json")
    people.remember(4242, "Alice", None, "Alice_W")
    again = PeopleDirectory(tmp_path / "p.json")
    assert again.by_username("@alice_w") == TelegramPerson(4242)
    assert again.person(4242).fullname == "Alice"
    assert again.by_username("nobody") is None


# ------------------------------------------------------------------------------- errors, logs


def test_error_classes() -> None:
    assert TelegramUndeliverable.undeliverable is True
    assert TelegramSendError.undeliverable is False
    assert is_unreachable_chat("Bad Request: chat not found")
    assert not is_unreachable_chat("Bad Request: message is too long")


# ------------------------------------------------------------------------------- captions


def test_truncate_text_keeps_what_fits() -> None:
    assert truncate_text("short", 1024) == "short"
    assert truncate_text("x" * 1024, 1024) == "x" * 1024
    assert truncate_text("x" * 1025, 1024) == "x" * 1023 + "…"
    # A character outside the BMP counts 2 and is never cut in half.
    assert truncate_text("🙂" * 3, 5) == "🙂🙂…"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=1, max_value=200))
def test_truncate_text_fits_and_is_a_prefix(text: str, limit: int) -> None:
    out = truncate_text(text, limit)
    assert utf16_len(out) <= limit
    assert out == text or (out.endswith("…") and text.startswith(out[:-1]))
