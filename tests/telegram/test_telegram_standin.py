"""The stand-in itself, over raw HTTP (JSON and form bodies): it must behave like the Bot API
where the backend depends on it, or the other tests prove nothing."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from telegram_standin import BotApiStandin


@pytest.fixture
def api(standin: BotApiStandin) -> BotApiStandin:
    standin.add_user(4242, "Alice", "alice")
    standin.add_user(6363, "Carol", started=False)
    standin.add_group(-100123, "Group")
    return standin


def call(api: BotApiStandin, method: str, form: bool = False, **params: object) -> httpx.Response:
    url = f"{api.base_url}{api.token}/{method}"
    if form:
        # As PTB posts: form fields, objects JSON-encoded.
        data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        return httpx.post(url, data=data, timeout=10)
    return httpx.post(url, json=params, timeout=10)


def test_answers_have_bot_api_shapes(api: BotApiStandin) -> None:
    me = call(api, "getMe").json()
    assert me["ok"] is True and me["result"]["is_bot"] is True
    bad = httpx.post(f"{api.base_url}wrong:token/getMe", timeout=10)
    assert bad.status_code == 401
    assert bad.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert call(api, "noSuchMethod").status_code == 404


def test_get_updates_offsets_and_long_poll(api: BotApiStandin) -> None:
    first = api.user_says(4242, "/iwant coffee")
    second = api.user_says(4242, "hello")
    got = call(api, "getUpdates", timeout=0).json()["result"]
    assert [u["update_id"] for u in got] == [first, second]
    entity = got[0]["message"]["entities"][0]
    assert entity == {"type": "bot_command", "offset": 0, "length": 6}
    # Not confirmed yet: the same updates again.
    assert len(call(api, "getUpdates", timeout=0).json()["result"]) == 2
    # offset = last + 1 confirms both; they are gone for good.
    assert call(api, "getUpdates", offset=second + 1, timeout=0).json()["result"] == []
    assert call(api, "getUpdates", timeout=0).json()["result"] == []

    # A long poll returns as soon as an update arrives, not at its timeout.
    threading.Timer(0.3, lambda: api.user_says(4242, "late")).start()
    started = time.monotonic()
    got = call(api, "getUpdates", offset=second + 1, timeout=5).json()["result"]
    assert [u["message"]["text"] for u in got] == ["late"]
    assert 0.2 < time.monotonic() - started < 3


def test_concurrent_get_updates_conflict(api: BotApiStandin) -> None:
    results: list[int] = []
    t = threading.Thread(
        target=lambda: results.append(call(api, "getUpdates", timeout=5).status_code)
    )
    t.start()
    api.wait_for_calls("getUpdates")
    assert call(api, "getUpdates", timeout=0).status_code == 200
    t.join(10)
    assert results == [409]


def test_send_message_rules(api: BotApiStandin) -> None:
    ok = call(api, "sendMessage", form=True, chat_id=4242, text="hi").json()
    assert ok["ok"] and ok["result"]["chat"]["id"] == 4242 and ok["result"]["text"] == "hi"
    never_started = call(api, "sendMessage", chat_id=6363, text="hi")
    assert never_started.status_code == 403
    assert call(api, "sendMessage", chat_id=999, text="hi").json()["description"] == (
        "Bad Request: chat not found"
    )
    assert call(api, "sendMessage", chat_id=4242, text="x" * 4097).status_code == 400
    assert call(api, "sendMessage", chat_id=4242, text=" ").status_code == 400
    too_long_data = {"inline_keyboard": [[{"text": "b", "callback_data": "x" * 65}]]}
    assert (
        call(api, "sendMessage", chat_id=4242, text="k", reply_markup=too_long_data).status_code
        == 400
    )
    assert api.texts(4242) == ["hi"]


def test_failures_on_demand(api: BotApiStandin) -> None:
    api.fail("sendMessage", 429, retry_after=7)
    flood = call(api, "sendMessage", chat_id=4242, text="hi").json()
    assert flood == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    api.fail("sendMessage", 403, chat_id=-100123)
    assert call(api, "sendMessage", chat_id=4242, text="fine").status_code == 200
    assert call(api, "sendMessage", chat_id=-100123, text="no").status_code == 403
    api.drop("getMe")
    with pytest.raises(httpx.RemoteProtocolError):
        call(api, "getMe")
    assert call(api, "getMe").status_code == 200


def test_buttons_edits_and_answers(api: BotApiStandin) -> None:
    markup = {"inline_keyboard": [[{"text": "Cancel", "callback_data": "c:iwant cancel #1"}]]}
    sent = call(api, "sendMessage", chat_id=4242, text="w", reply_markup=markup).json()["result"]
    update_id = api.press(4242, sent, "Cancel")
    (update,) = call(api, "getUpdates", timeout=0).json()["result"]
    query = update["callback_query"]
    assert update["update_id"] == update_id and query["data"] == "c:iwant cancel #1"
    assert query["from"]["id"] == 4242 and query["message"]["message_id"] == sent["message_id"]
    assert call(api, "answerCallbackQuery", callback_query_id=query["id"]).json()["ok"]
    assert call(api, "answerCallbackQuery", callback_query_id=query["id"]).status_code == 400
    edit = {"chat_id": 4242, "message_id": sent["message_id"]}
    assert call(api, "editMessageReplyMarkup", **edit).json()["ok"]
    assert call(api, "editMessageReplyMarkup", **edit).status_code == 400  # not modified
    assert call(api, "editMessageText", **edit, text="done").json()["result"]["text"] == "done"
    assert api.sent(4242)[0]["text"] == "done"


def test_send_document_multipart(api: BotApiStandin) -> None:
    url = f"{api.base_url}{api.token}/sendDocument"

    def upload(chat_id: int, content: bytes, caption: str = "true") -> httpx.Response:
        files = {"document": ("export.json", content, "application/json")}
        data = {"chat_id": str(chat_id), "caption": caption}
        return httpx.post(url, data=data, files=files, timeout=10)

    answer = upload(4242, b'{"a": 1}').json()
    assert answer["ok"] is True
    message = answer["result"]
    assert message["caption"] == "true"  # free text, not a JSON boolean
    document = message["document"]
    assert document["file_name"] == "export.json" and document["file_size"] == 8
    assert document["mime_type"] == "application/json"
    assert document["file_id"] and document["file_unique_id"]
    # The file_id of an upload sends the same file again, without uploading it.
    again = httpx.post(url, json={"chat_id": 4242, "document": document["file_id"]}, timeout=10)
    assert again.json()["result"]["document"]["file_id"] == document["file_id"]
    assert [d["content"] for d in api.documents(4242)] == [b'{"a": 1}', b'{"a": 1}']
    assert [d["caption"] for d in api.documents(4242)] == ["true", None]

    assert upload(6363, b"x").status_code == 403  # never started the bot
    assert upload(4242, b"").json()["description"] == "Bad Request: file must be non-empty"
    too_long = upload(4242, b"x", caption="c" * 1025)
    assert too_long.json()["description"] == "Bad Request: message caption is too long"
    assert httpx.post(url, json={"chat_id": 4242}, timeout=10).status_code == 400
    assert len(api.documents()) == 2
    assert api.texts(4242) == []  # documents are messages without text
