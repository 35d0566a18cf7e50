"""The backend class in this process against the Bot API stand-in, with errbot's message
handling replaced by a recorder: what reaches errbot, what Telegram is asked, which
exception a failed send raises."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from errbot.backends.base import Person, Room, RoomOccupant
from iwant_telegram.util import TelegramPermanentError, TelegramSendError, TelegramUndeliverable
from telegram_harness import TOKEN, InProcessBot
from telegram_standin import BotApiStandin, wait_until

ALICE, BOB, CAROL = 4242, 5151, 6363
GROUP = -100123


@pytest.fixture
def people(standin: BotApiStandin) -> BotApiStandin:
    standin.add_user(ALICE, "Alice", "alice", last_name="Liddell")
    standin.add_user(BOB, "Bob", "bob")
    standin.add_user(CAROL, "Carol", started=False)  # never opened a chat with the bot
    standin.add_group(GROUP, "Coffee lovers")
    return standin


# ------------------------------------------------------------------------------- start-up


def test_start_up_registers_commands_and_polls(people: BotApiStandin, inproc: InProcessBot):
    methods = [c.method for c in people.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "setMyCommands"]
    assert "iwant" in [c["command"] for c in people.commands]
    poll = people.calls_to("getUpdates")[0].params
    assert poll["timeout"] == 2
    assert set(poll["allowed_updates"]) == {"message", "callback_query"}
    assert inproc.backend.bot_identifier.nick == "IWantTestBot"
    assert inproc.backend.mode == "telegram"


# ------------------------------------------------------------------------------- incoming


def test_private_message_reaches_errbot_from_the_person(people, inproc):
    people.user_says(ALICE, "!iwant coffee")
    (msg,) = inproc.wait_received(1)
    assert msg.body == "!iwant coffee"
    assert isinstance(msg.frm, Person) and not isinstance(msg.frm, RoomOccupant)
    assert str(msg.frm.person) == "4242"
    assert msg.frm.fullname == "Alice Liddell" and msg.frm.nick == "alice"
    assert msg.is_direct and msg.to == inproc.backend.bot_identifier


def test_slash_commands_become_errbot_commands(people, inproc):
    people.user_says(ALICE, "/iwant coffee 10:00")
    people.user_says(ALICE, "/iwant@IWantTestBot lunch", chat_id=GROUP)
    people.user_says(BOB, "/iwant@SomeOtherBot tea", chat_id=GROUP)  # not for us
    people.user_says(BOB, "!iwant walk", chat_id=GROUP)
    msgs = inproc.wait_received(3)
    time.sleep(0.3)  # the ignored one would have arrived by now
    assert [m.body for m in inproc.received] == [
        "!iwant coffee 10:00",
        "!iwant lunch",
        "!iwant walk",
    ]
    group_msg = msgs[1]
    assert isinstance(group_msg.frm, RoomOccupant) and isinstance(group_msg.to, Room)
    assert str(group_msg.frm.person) == "4242"
    assert str(group_msg.frm.room) == str(GROUP) == str(group_msg.to)
    assert group_msg.is_group


def test_start_shows_help(people, inproc):
    people.user_says(BOB, "/start")
    (msg,) = inproc.wait_received(1)
    assert msg.body == "!help"  # no iwant plugin here; with it, "!iwant help"


def test_identifiers_round_trip(people, inproc):
    backend = inproc.backend
    people.user_says(ALICE, "hi", chat_id=GROUP)
    (msg,) = inproc.wait_received(1)
    person = backend.build_identifier(str(msg.frm.person))
    assert str(person) == "4242" and person.fullname == "Alice Liddell"
    room = backend.build_identifier(str(msg.frm.room))
    assert isinstance(room, Room) and str(room) == str(GROUP)
    assert backend.build_identifier("@ALICE") == person  # seen, so known by username
    with pytest.raises(ValueError):
        backend.build_identifier("@stranger")
    with pytest.raises(ValueError):
        backend.build_identifier("alice")


def test_offset_is_saved_and_updates_are_confirmed(people, inproc, tmp_path: Path):
    first = people.user_says(ALICE, "one")
    second = people.user_says(ALICE, "two")
    inproc.wait_received(2)
    offset_file = tmp_path / "data" / "telegram-123456789-offset.json"
    wait_until(lambda: offset_file.exists() and str(second + 1) in offset_file.read_text())
    # The next getUpdates confirms both: Telegram forgets them.
    wait_until(lambda: people.confirmed_below == second + 1, what="confirmation")
    assert first < second and not people.pending


def test_polling_survives_5xx_429_and_dropped_connections(people, inproc):
    people.fail("getUpdates", 502, times=2)
    people.fail("getUpdates", 429, retry_after=1)
    people.drop("getUpdates")
    people.drop("getUpdates", delay=0.5)  # mid long-poll
    # Make the current long poll return so the failures start now.
    people.user_says(ALICE, "before")
    inproc.wait_received(1)
    wait_until(lambda: all(r.times == 0 for r in people.rules), 15, "all failures used")
    people.user_says(ALICE, "after")
    msgs = inproc.wait_received(2, timeout=15)
    assert [m.body for m in msgs] == ["before", "after"]


# ------------------------------------------------------------------------------- outgoing


def test_send_to_person_group_and_occupant(people, inproc):
    backend = inproc.backend
    inproc.send("4242", "to alice")
    inproc.send(str(GROUP), "to the group")
    people.user_says(BOB, "hi", chat_id=GROUP)
    (msg,) = inproc.wait_received(1)
    inproc.send(msg.frm, "to bob, privately")  # a person in a group: a direct message
    inproc.send(backend.build_reply(msg, "x").to, "reply in the group")
    assert people.texts(ALICE) == ["to alice"]
    assert people.texts(GROUP) == ["to the group", "reply in the group"]
    assert people.texts(BOB) == ["to bob, privately"]
    # Plain text: no parse mode, so user text is shown as typed.
    assert all("parse_mode" not in c.params for c in people.calls_to("sendMessage"))


def test_text_is_sent_verbatim(people, inproc):
    tricky = "<b>Bob</b> *bold* _it_ [link](http://x) `code` & &amp;"
    inproc.send("4242", tricky)
    assert people.texts(ALICE) == [tricky]


def test_long_messages_are_split_with_buttons_on_the_last_part(people, inproc):
    body = "\n".join(f"{i:05d} " + "é" * 60 for i in range(200))  # ~13,000 characters
    inproc.send("4242", body, buttons=[{"label": "Cancel", "command": "iwant cancel #3"}])
    sent = people.sent(ALICE)
    assert len(sent) == 4
    assert "\n".join(m["text"] for m in sent) == body
    assert [("reply_markup" in m) for m in sent] == [False, False, False, True]


def test_buttons_render_as_inline_keyboard(people, inproc):
    long_command = "iwant cancel " + "x" * 80
    inproc.send(
        "4242",
        "Waiting for coffee",
        buttons=[
            {"label": "Cancel", "command": "iwant cancel #12"},
            {"label": "Other", "command": long_command},
        ],
    )
    (m,) = people.sent(ALICE)
    row = m["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in row] == ["Cancel", "Other"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in row)


def test_forbidden_raises_undeliverable(people, inproc):
    people.block(BOB)
    for who in (BOB, CAROL, 999):  # blocked, never started, unknown chat
        with pytest.raises(TelegramUndeliverable) as err:
            inproc.send(str(who), "hello")
        assert err.value.undeliverable is True
    assert [c.status for c in people.calls_to("sendMessage")] == [403, 403, 400]


def test_forbidden_on_demand_for_one_chat(people, inproc):
    people.fail("sendMessage", 403, chat_id=ALICE)
    with pytest.raises(TelegramUndeliverable):
        inproc.send("4242", "first")
    inproc.send("5151", "bob is fine")
    assert people.texts(BOB) == ["bob is fine"]


def test_flood_control_is_waited_out(people, inproc):
    people.fail("sendMessage", 429, retry_after=1, times=2)
    started = time.monotonic()
    inproc.send("4242", "eventually")
    assert time.monotonic() - started >= 2.0
    assert people.texts(ALICE) == ["eventually"]
    assert [c.status for c in people.calls_to("sendMessage")] == [429, 429, 200]


def test_flood_storm_raises_a_transient_error(people, inproc):
    people.fail("sendMessage", 429, retry_after=1, times=10)
    with pytest.raises(TelegramSendError) as err:
        inproc.send("4242", "too much")
    assert err.value.undeliverable is False and err.value.retry_after == 1
    assert len(people.calls_to("sendMessage")) == 1 + inproc.backend.max_flood_retries


def test_long_flood_wait_is_not_waited_inside_a_send(people, inproc):
    people.fail("sendMessage", 429, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(TelegramSendError) as err:
        inproc.send("4242", "later")
    assert time.monotonic() - started < 5
    assert err.value.retry_after == 3600


@pytest.mark.parametrize("how", ["500", "502", "drop"])
def test_server_errors_raise_transient_errors(people, inproc, how: str):
    if how == "drop":
        people.drop("sendMessage")
    else:
        people.fail("sendMessage", int(how))
    with pytest.raises(TelegramSendError) as err:
        inproc.send("4242", "x")
    assert not isinstance(err.value, TelegramUndeliverable)
    inproc.send("4242", "retried")  # the plugin's retry works
    assert people.texts(ALICE) == ["retried"]


def test_other_bad_requests_are_not_undeliverable(people, inproc):
    people.fail("sendMessage", 400, "Bad Request: can't parse entities")
    with pytest.raises(TelegramPermanentError) as err:
        inproc.send("4242", "x")
    assert err.value.undeliverable is False


def test_migrated_group_is_followed(people, inproc):
    people.add_group(-1009999, "Upgraded")
    people.fail(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        chat_id=GROUP,
        migrate_to_chat_id=-1009999,
    )
    inproc.send(str(GROUP), "still works")
    assert people.texts(-1009999) == ["still works"]


def test_send_from_many_threads(people, inproc):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            inproc.send("4242", f"message {n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert sorted(people.texts(ALICE)) == sorted(f"message {n}" for n in range(20))


def test_send_when_not_connected_raises(standin: BotApiStandin, tmp_path: Path):
    bot = InProcessBot(tmp_path, standin)  # never started
    with pytest.raises(TelegramSendError):
        bot.send("4242", "x")


# ------------------------------------------------------------------------------- buttons


def test_own_button_in_a_private_chat(people, inproc):
    inproc.send("4242", "Waiting", buttons=[{"label": "Cancel", "command": "iwant cancel #12"}])
    (m,) = people.sent(ALICE)
    people.press(ALICE, m, "Cancel")
    (msg,) = inproc.wait_received(1)
    assert msg.body == "!iwant cancel #12"
    assert str(msg.frm.person) == "4242" and msg.is_direct
    assert len(people.answered_queries) == 1
    # The buttons are gone from the message, so it cannot be pressed twice.
    assert "reply_markup" not in people.message(ALICE, m["message_id"])
    order = [c.method for c in people.calls if c.method != "getUpdates"]
    assert order[-2:] == ["answerCallbackQuery", "editMessageReplyMarkup"]


def test_someone_elses_button_in_a_group(people, inproc):
    inproc.send(
        str(GROUP), "Alice waits", buttons=[{"label": "Cancel", "command": "iwant cancel #7"}]
    )
    (m,) = people.sent(GROUP)
    people.press(BOB, m, "Cancel")
    (msg,) = inproc.wait_received(1)
    # It acts as Bob's command, in the group (the plugin then refuses: not his request).
    assert msg.body == "!iwant cancel #7"
    assert str(msg.frm.person) == "5151" and str(msg.frm.room) == str(GROUP)
    assert len(people.answered_queries) == 1
    assert people.message(GROUP, m["message_id"])["reply_markup"] == m["reply_markup"]
    assert not people.calls_to("editMessageReplyMarkup")


def test_long_button_command_is_delivered_whole(people, inproc):
    command = "echo " + "word " * 30
    inproc.send("4242", "Long", buttons=[{"label": "Go", "command": command}])
    (m,) = people.sent(ALICE)
    people.press(ALICE, m)
    (msg,) = inproc.wait_received(1)
    assert msg.body == "!" + command


def test_forged_button_data_is_answered_and_ignored(people, inproc):
    inproc.send("4242", "Hello")
    (m,) = people.sent(ALICE)
    people.press_data(ALICE, m, "k:doesnotexist")
    wait_until(lambda: people.answered_queries, what="answerCallbackQuery")
    (answer,) = people.answered_queries.values()
    assert "no longer works" in answer["text"]
    people.user_says(ALICE, "next")
    (msg,) = inproc.wait_received(1)
    assert msg.body == "next"


# ------------------------------------------------------------------------------- lifecycle


def test_restart_resumes_from_the_saved_offset(people, tmp_path: Path):
    first = InProcessBot(tmp_path / "data", people).start()
    people.user_says(ALICE, "one")
    first.wait_received(1)
    first.stop()
    people.user_says(ALICE, "two while down")
    people.user_says(BOB, "three while down")
    second = InProcessBot(tmp_path / "data", people).start()
    try:
        msgs = second.wait_received(2)
        time.sleep(0.3)
        assert [m.body for m in second.received] == ["two while down", "three while down"]
        assert [m.body for m in msgs] == ["two while down", "three while down"]
    finally:
        second.stop()


def test_unreachable_api_at_start_lets_errbot_retry(people, tmp_path: Path):
    people.fail("getMe", 502)
    bot = InProcessBot(tmp_path, people)
    assert bot.backend.serve_once() is False  # errbot's serve_forever retries with backoff
    assert not bot.connected.is_set()


def test_wrong_token_stops_the_bot(people, tmp_path: Path):
    people.token = "123456789:another-token"  # the API now rejects ours: 401
    bot = InProcessBot(tmp_path, people)
    with pytest.raises(SystemExit) as exc:
        bot.backend.serve_once()
    assert exc.value.code == 2
    assert not bot.connected.is_set()


def test_stop_is_prompt_during_a_long_poll(people, inproc):
    started = time.monotonic()
    inproc.stop()
    assert time.monotonic() - started < 3
    assert inproc.result is True


def test_token_never_logged(people, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    bot = InProcessBot(tmp_path, people)  # the backend installs the redaction here
    caplog.set_level(logging.DEBUG, logger="httpx")  # httpx logs every URL, token included
    bot.start()
    try:
        people.fail("getUpdates", 502)
        people.user_says(ALICE, "hi")
        bot.wait_received(1)
        bot.send("4242", "x")
    finally:
        bot.stop()
    secret = TOKEN.split(":", 1)[1]
    assert any("[secret]" in r.getMessage() for r in caplog.records)
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert secret not in caplog.text


# ------------------------------------------------------------------------------- files


def test_send_file_delivers_a_document(people, inproc):
    content = '{"person": "Zoë", "requests": []}\n'.encode()
    to = inproc.backend.build_identifier("4242")
    inproc.backend.upload(to, "iwant-export.json", content, "Everything iwant keeps (JSON).")
    (doc,) = people.documents(ALICE)
    assert doc["content"] == content and doc["file_name"] == "iwant-export.json"
    assert doc["caption"] == "Everything iwant keeps (JSON)."
    assert doc["mime_type"] == "application/json"
    (call,) = people.calls_to("sendDocument")
    assert call.params["chat_id"] == ALICE and "parse_mode" not in call.params
    assert call.params["document"].filename == "iwant-export.json"  # a multipart file part
    (message,) = people.sent(ALICE)
    assert message["document"]["file_size"] == len(content)
    assert message["caption"] == "Everything iwant keeps (JSON)."
    assert people.texts(ALICE) == []  # a document, not a text message


def test_send_file_to_someone_in_a_group_goes_to_their_private_chat(people, inproc):
    people.user_says(BOB, "hi", chat_id=GROUP)
    (msg,) = inproc.wait_received(1)
    inproc.backend.upload(msg.frm, "bob.json", b"{}", "yours")
    assert [d["file_name"] for d in people.documents(BOB)] == ["bob.json"]
    assert people.documents(GROUP) == []
    with pytest.raises(ValueError):  # private data never goes to a group
        inproc.backend.upload(msg.to, "bob.json", b"{}", "yours")
    assert len(people.calls_to("sendDocument")) == 1


def test_send_file_cuts_a_long_caption(people, inproc):
    caption = "🙂" * 600 + "x" * 200  # 1,400 UTF-16 units
    inproc.backend.upload(inproc.backend.build_identifier("4242"), "a.txt", b"a", caption)
    (doc,) = people.documents(ALICE)
    sent_caption = doc["caption"]
    assert len(sent_caption.encode("utf-16-le")) // 2 <= 1024
    assert sent_caption.endswith("…") and caption.startswith(sent_caption[:-1])
    assert doc["mime_type"] == "text/plain"


def test_send_file_failures_raise_like_send_message(people, inproc):
    backend = inproc.backend
    people.block(BOB)
    for who in (CAROL, BOB, 999):  # never started, blocked, unknown chat
        with pytest.raises(TelegramUndeliverable) as err:
            backend.upload(backend.build_identifier(str(who)), "x.json", b"{}", "x")
        assert err.value.undeliverable is True and err.value.chat_id == who
    assert [c.status for c in people.calls_to("sendDocument")] == [403, 403, 400]
    people.fail("sendDocument", 502)
    with pytest.raises(TelegramSendError) as transient:
        backend.upload(backend.build_identifier("4242"), "x.json", b"{}", "x")
    assert not transient.value.undeliverable
    with pytest.raises(TelegramPermanentError):  # Telegram refuses empty files
        backend.upload(backend.build_identifier("4242"), "x.json", b"", "x")
    assert people.documents() == []


def test_send_file_waits_out_flood_control(people, inproc):
    people.fail("sendDocument", 429, retry_after=1)
    started = time.monotonic()
    inproc.backend.upload(inproc.backend.build_identifier("4242"), "x.json", b"{}", "x")
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in people.calls_to("sendDocument")] == [429, 200]
    assert len(people.documents(ALICE)) == 1


def test_send_file_from_many_threads_and_when_not_connected(people, inproc, tmp_path: Path):
    backend = inproc.backend
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            backend.upload(backend.build_identifier("4242"), f"{n}.json", b"[%d]" % n, "")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    docs = people.documents(ALICE)
    assert sorted(d["content"] for d in docs) == sorted(b"[%d]" % n for n in range(8))
    assert all(d["caption"] is None for d in docs)  # an empty caption is left out
    idle = InProcessBot(tmp_path / "idle", people)  # never started
    with pytest.raises(TelegramSendError):
        idle.backend.upload(idle.backend.build_identifier("4242"), "x.json", b"{}", "x")


def test_an_update_offered_again_reaches_errbot_once(people, inproc):
    """Telegram offers an update again when it missed the bot's confirmation: the running
    bot has handled it already, and hands errbot nothing new."""
    first = people.user_says(ALICE, "once")
    second = people.user_says(BOB, "/iwant tea")
    inproc.wait_received(2)
    wait_until(lambda: people.confirmed_below > second, what="confirmation")
    people.redeliver(first)
    people.redeliver(second)

    def offered(update_id: int) -> int:
        answers = [c.response for c in people.calls_to("getUpdates") if c.status == 200]
        return sum(any(u["update_id"] == update_id for u in a["result"]) for a in answers)

    wait_until(lambda: offered(first) == offered(second) == 2, what="both offered again")
    people.user_says(ALICE, "next")
    msgs = inproc.wait_received(3)
    time.sleep(0.3)
    assert [m.body for m in inproc.received] == ["once", "!iwant tea", "next"]
    assert [m.body for m in msgs][-1] == "next"
