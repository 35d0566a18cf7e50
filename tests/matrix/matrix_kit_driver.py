"""The adapter kit's driver for Matrix: people talk to a real errbot process (the iwant
plugin on the IWantMatrix backend) through a real Synapse, each with a matrix-nio client
that encrypts as Element does.

Six people, each with an encrypted direct chat with the bot (made as Element makes one:
``is_direct``, the bot invited), and a room with all of them. A LocalId is a Matrix id:
``@kitann:localhost``, ``!abc:localhost``. An admin has lifted the bot's rate limits
(override_ratelimit) and plugins.cfg lifts its pacing to match, as docs/matrix.md says;
``rate_limit`` gives the bot Synapse's defaults back and spends its burst, so that Synapse
answers its next sends with real 429s.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid
from pathlib import Path

from iwant_matrix.backend import IWantMatrixBackend
from iwant_platform.kit import NotSupported, Seen
from matrix_bot import LIFTED, BotProcess
from matrix_people import Loop, Person
from synapse_harness import HttpError, Synapse, wait_until

NAMES = ("Ann", "Ben", "Cleo", "Dan", "Eva", "Finn")


class MatrixKitDriver:
    """The kit's ``Platform`` on Matrix (a real Synapse and real errbot processes)."""

    name = "matrix"
    capabilities = IWantMatrixBackend.capabilities
    command = "!iwant"
    patience = 60.0

    def __init__(self, synapse: Synapse, loop: Loop, folder: Path, prefix: str = "kit") -> None:
        self.synapse, self.folder = synapse, folder
        self.bot_account = synapse.register(f"{prefix}bot", displayname="iwant")
        self.bot_id = self.bot_account.user_id
        synapse.lift_rate_limits(self.bot_id)
        self.by_id: dict[str, Person] = {}
        everyone = [*NAMES, "Kit"]
        for name in everyone:
            account = synapse.register(f"{prefix}{name.lower()}", displayname=name)
            synapse.lift_rate_limits(account.user_id)  # people making rooms: not under test
            person = Person(loop, synapse.url, account, folder / "people" / name, self.bot_id)
            self.by_id[account.user_id] = person.start()
        self.people = tuple(list(self.by_id)[: len(NAMES)])
        self.kit = self.by_id[list(self.by_id)[-1]]
        self.dm = {
            user: person.create_direct(encrypted=True) for user, person in self.by_id.items()
        }
        first = self.by_id[self.people[0]]
        self.room = first.create_room("Kit room", [self.bot_id, *self.people[1:]])
        for user in self.people[1:]:
            self.by_id[user].join(self.room)
        # Where the driver spends the bot's burst of messages (see rate_limit).
        self.scratch = self.kit.create_room("Scratch", [self.bot_id])
        self.bot = BotProcess(synapse, self.bot_account, folder / "bot", pacing=LIFTED)
        self._relift: threading.Thread | None = None
        self.left: set[str] = set()  # direct chats a person left (make_unreachable)
        self._closing = threading.Event()

    # -- the bot ------------------------------------------------------------------------------

    def start_bot(self) -> None:
        self.bot.start(timeout=self.patience)
        rooms = [r for r in (*self.dm.values(), self.room, self.scratch) if r not in self.left]
        wait_until(
            lambda: all(self.bot_id in self.synapse.joined(r) for r in rooms),
            self.patience,
            "the bot to join every direct chat and room",
        )
        before = len(self.kit.seen_in(self.dm[self.kit.user_id]))
        self.kit.say(self.dm[self.kit.user_id], "!iwant help")  # up once it answers
        self.kit.wait_for(self.dm[self.kit.user_id], "iwant puts you", before, self.patience)

    def stop_bot(self) -> None:
        code = self.bot.stop(timeout=self.patience)
        if code not in (0, None):
            raise AssertionError(f"errbot exited with {code} on SIGTERM:\n{self.bot.output()}")

    def close(self) -> None:
        self._closing.set()
        self.bot.kill()
        for person in self.by_id.values():
            person.stop()

    # -- people -------------------------------------------------------------------------------

    def say(self, person: str, text: str, room: str | None = None) -> object:
        where = room or self.dm[person]
        return (where, self.by_id[person].say(where, text))

    def shown_to(self, person: str) -> list[Seen]:
        return [
            Seen(s.text, (), (s.room_id, s.event_id)) for s in self.by_id[person].seen_directly()
        ]

    def shown_in(self, room: str) -> list[Seen]:
        viewer = self.by_id[self.people[0]]
        return [Seen(s.text, (), (s.room_id, s.event_id)) for s in viewer.seen_in(room)]

    def press(self, person: str, message: Seen, label: str) -> None:
        raise NotSupported("Matrix has no buttons (reactions act as buttons; test_matrix_iwant)")

    def groups(self) -> list[tuple[frozenset[str], list[Seen]]]:
        found: dict[str, tuple[frozenset[str], list[Seen]]] = {}
        for person in self.by_id.values():
            for room_id in sorted(person.invited - person.direct):
                members = frozenset(person.members(room_id) - {self.bot_id})
                said = [Seen(s.text, (), (s.room_id, s.event_id)) for s in person.seen_in(room_id)]
                if room_id not in found or len(said) > len(found[room_id][1]):
                    found[room_id] = (members, said)
        return list(found.values())

    def set_name(self, person: str, name: str) -> None:
        self.by_id[person].set_name(name)

    # -- misbehaving --------------------------------------------------------------------------

    def redeliver(self, handle: object) -> None:
        raise NotSupported(
            "Synapse never hands a running client one event twice; the backend's RecentKeys "
            "guard (a re-read sync, a gap filled twice) is tested in test_matrix_units"
        )

    def make_unreachable(self, person: str) -> None:
        """The person leaves their direct chat with the bot and refuses invites from now on
        (m.invite_permission_config): the bot can no longer write to them privately."""
        who = self.by_id[person]
        rooms = sorted(who.direct)
        who.block_invites()
        for room_id in rooms:
            who.leave(room_id)
            self.left.add(room_id)
        wait_until(
            lambda: all(self.bot_id not in self.synapse.joined(r) for r in rooms),
            self.patience,
            f"the bot to leave {person}'s direct chats",
        )

    def rate_limit(self, times: int, seconds: float) -> None:
        """Synapse's default limits for the bot again, its burst spent (messages in a room of
        the driver's): its next sends meet real 429s (about 5 s each, whatever ``times`` and
        ``seconds`` say). Once one has, the limits are lifted again."""
        before = self.rate_limited()
        self.synapse.restore_rate_limits(self.bot_id)
        room = urllib.parse.quote(self.scratch, safe="")
        for _ in range(20):
            txn = uuid.uuid4().hex
            try:
                self.synapse.request(
                    "PUT",
                    f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}",
                    {"msgtype": "m.notice", "body": "spending the burst"},
                    token=self.bot_account.access_token,
                )
            except HttpError as err:
                if err.status == 429:
                    break
                raise
        else:
            raise AssertionError("Synapse answered no 429 under its default limits")

        def relift() -> None:
            deadline = time.monotonic() + self.patience
            while time.monotonic() < deadline and not self._closing.is_set():
                if self.rate_limited() > before:
                    break
                self._closing.wait(0.2)
            self.synapse.lift_rate_limits(self.bot_id)

        self._relift = threading.Thread(target=relift, daemon=True)
        self._relift.start()

    def rate_limited(self) -> int:
        """The 429s Synapse answered the bot's own requests (its access log), the driver's
        spending of the burst left out."""
        return self.synapse.answered_429(self.bot_id, not_in=self.scratch)

    # -- for a failure's message --------------------------------------------------------------

    def log_tail(self, chars: int = 6000) -> str:
        return self.bot.output(chars)
