"""A test-only errbot backend: its platform name comes from FAKECHAT_PLATFORM; it reads
messages from FAKECHAT_INBOX and appends what the bot sends to FAKECHAT_OUTBOX (JSON lines).

Like a platform that re-delivers what a crashed bot never confirmed, a new process reads the
inbox from its start: an event's ``event_id`` is what tells the bot it saw it before. With
FAKECHAT_DIE_ON_REPLY set, the process dies (exit status 9) when it is about to send a reply
whose text starts with it: after the command's commit, before its answer reaches anyone. With
FAKECHAT_SEND_SECONDS, each notification (``send_text``) takes that long to send, and its
line names the process (``pid``): a slow platform, to stop a process in mid-delivery.
"""

import json
import os
import time
from pathlib import Path

from errbot.backends.base import Message, Person, Room, RoomOccupant
from errbot.core import ErrBot
from iwant_platform.contract import ChatPlatform


class FakePerson(Person):
    def __init__(self, person: str) -> None:
        self._person = person

    person = property(lambda self: self._person)
    client = property(lambda self: None)
    nick = property(lambda self: self._person)
    fullname = property(lambda self: f"{os.environ['FAKECHAT_PLATFORM']} {self._person}")
    aclattr = property(lambda self: self._person)
    email = property(lambda self: None)

    def __str__(self) -> str:
        return self._person

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class FakeRoom(Room):
    def __init__(self, name: str) -> None:
        self._name = name

    def __str__(self) -> str:
        return self._name

    def join(self, username=None, password=None) -> None:
        pass

    def leave(self, reason=None) -> None:
        pass

    def create(self) -> None:
        pass

    def destroy(self) -> None:
        pass

    exists = property(lambda self: True)
    joined = property(lambda self: True)
    topic = property(lambda self: "")
    occupants = property(lambda self: [])

    def invite(self, *args) -> None:
        pass

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class FakeOccupant(FakePerson, RoomOccupant):
    def __init__(self, person: str, room: FakeRoom) -> None:
        super().__init__(person)
        self._room = room

    room = property(lambda self: self._room)


class FakeChatBackend(ErrBot, ChatPlatform):
    """A backend of the adapter contract, text only: the platform's event ids count."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.platform = os.environ["FAKECHAT_PLATFORM"]
        self.bot_identifier = FakePerson("iwant-bot")
        self.inbox = Path(os.environ["FAKECHAT_INBOX"])
        self.outbox = Path(os.environ["FAKECHAT_OUTBOX"])

    @property
    def mode(self) -> str:
        return os.environ["FAKECHAT_PLATFORM"]

    def serve_forever(self) -> None:
        self.connect_callback()
        offset = 0
        try:
            while True:
                lines = self.inbox.read_text().splitlines() if self.inbox.exists() else []
                for line in lines[offset:]:
                    event = json.loads(line)
                    if event.get("quit"):
                        return
                    msg = Message(event["text"])
                    if event.get("event_id"):
                        msg.extras["event_id"] = event["event_id"]
                    person = event["from"]
                    room = event.get("room")
                    msg.frm = FakeOccupant(person, FakeRoom(room)) if room else FakePerson(person)
                    msg.to = FakeRoom(room) if room else self.bot_identifier
                    self.callback_message(msg)
                offset = len(lines)
                time.sleep(0.05)
        except KeyboardInterrupt:  # SIGTERM, through iwant_platform.shutdown.graceful_sigterm
            pass
        finally:
            self.disconnect_callback()
            self.shutdown()

    def send_message(self, msg: Message) -> None:
        die = os.environ.get("FAKECHAT_DIE_ON_REPLY")
        if die and msg.body.startswith(die):
            os._exit(9)
        super().send_message(msg)
        with self.outbox.open("a") as out:
            out.write(json.dumps({"to": str(msg.to), "text": msg.body}) + "\n")

    def build_identifier(self, text: str):
        return FakeRoom(text[1:]) if text.startswith("#") else FakePerson(text)

    def build_reply(self, msg, text=None, private=False, threaded=False):
        reply = self.build_message(text)
        reply.frm = self.bot_identifier
        reply.to = msg.frm.room if isinstance(msg.frm, RoomOccupant) and not private else msg.frm
        return reply

    # -- the adapter contract ---------------------------------------------------------------

    def person_id(self, identifier) -> str:
        return str(identifier.person)

    def display_name(self, identifier) -> str:
        return str(identifier.fullname)

    def room_id(self, message) -> str | None:
        return str(message.frm.room) if isinstance(message.frm, RoomOccupant) else None

    def event_id(self, message) -> str | None:
        return message.extras.get("event_id")

    def bot_key(self) -> str:
        return str(self.bot_identifier)

    def send_text(self, to: str, text: str, buttons=()) -> None:
        slow = float(os.environ.get("FAKECHAT_SEND_SECONDS", "0"))
        if slow:
            time.sleep(slow)
            with self.outbox.open("a") as out:
                out.write(json.dumps({"to": to, "text": text, "pid": os.getpid()}) + "\n")
            return
        message = Message(text)
        message.frm, message.to = self.bot_identifier, self.build_identifier(to)
        self.send_message(message)

    def reply(self, message, text: str, buttons=()) -> None:
        self.send_message(self.build_reply(message, text))

    def change_presence(self, status="online", message="") -> None:
        pass

    def query_room(self, room: str) -> FakeRoom:
        return FakeRoom(room)

    def rooms(self) -> list:
        return []

    def prefix_groupchat_reply(self, message, identifier) -> None:
        pass
