"""The adapter kit: drives any iwant backend against its platform through the same scripted
conversations, and reports what it covered.

A platform's author writes one ``Platform`` (a driver): how a person says something to the
bot there (in a direct message or a room), what each person and room has been shown, how a
button is pressed, and how the platform is made to misbehave (a person the bot cannot
reach, a 429, an event delivered twice). The driver talks to the platform's server as a
person's client would: a stand-in of the platform's API, or the real server. The kit then
runs real bot processes (errbot with the iwant plugin on the backend under test) through
``SCENARIOS`` and checks what people see::

    from iwant_platform.kit import run_kit

    def test_my_platform_passes_the_adapter_kit(my_platform):
        report = run_kit(my_platform)
        assert report.ok, report.text()

A scenario that needs what the backend cannot do (buttons, group conversations) checks its
fallback instead (the command written out; each member told on their own); one that needs
what the driver cannot make happen (``rate_limit`` on a server whose limits cannot be
forced) is reported as not covered, with why, and ``report.ok`` stays true only if every
scenario the backend's capabilities call for was covered and passed.

Waits are on conditions, with a generous deadline (``Platform.patience``), never fixed
sleeps: a busy machine makes a scenario slower, not red.
"""

from __future__ import annotations

import time
import traceback
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .contract import Capabilities, LocalId


@dataclass(frozen=True)
class Seen:
    """One message of the bot as a person or room sees it: its text and button labels."""

    text: str
    buttons: tuple[str, ...] = ()
    #: The driver's handle of the message (to press its buttons); opaque to the kit.
    handle: object = None


class NotSupported(Exception):
    """The driver cannot make this happen on its platform (the scenario is not covered)."""


class Platform(Protocol):
    """A driver: the platform as its people see it. LocalIds are the platform's own ids."""

    # Read-only: a driver may declare each as a plain class attribute.

    @property
    def name(self) -> str:
        """The backend's platform name (its ``ChatPlatform.platform``)."""

    @property
    def capabilities(self) -> Capabilities:
        """The backend's capabilities (its ``ChatPlatform.capabilities``)."""

    @property
    def command(self) -> str:
        """How people type a command there: ``/iwant`` or ``!iwant``."""

    @property
    def people(self) -> Sequence[LocalId]:
        """At least six people who can talk to the bot."""

    @property
    def room(self) -> LocalId:
        """A room where the bot and those people are."""

    @property
    def patience(self) -> float:
        """Seconds to wait for something the bot should do (generous: machines are busy)."""

    def start_bot(self) -> None:
        """Start a bot process on the backend, connected, with a fresh database the first
        time and the same database after ``stop_bot``; return once it answers."""

    def stop_bot(self) -> None:
        """Stop the bot process as an operator would (SIGTERM or Ctrl-C)."""

    def say(self, person: LocalId, text: str, room: LocalId | None = None) -> object:
        """``person`` writes ``text`` to the bot: in their direct chat, or in ``room``. Returns
        the event's handle for ``redeliver``."""

    def shown_to(self, person: LocalId) -> list[Seen]:
        """Everything the bot has written in its direct chat with ``person``, oldest first."""

    def shown_in(self, room: LocalId) -> list[Seen]:
        """Everything the bot has written in ``room`` (threads included), oldest first."""

    def press(self, person: LocalId, message: Seen, label: str) -> None:
        """``person`` presses the button ``label`` of ``message`` (only with buttons)."""

    def groups(self) -> list[tuple[frozenset[LocalId], list[Seen]]]:
        """Conversations of the bot with several people: who is in each, and what it said."""

    def redeliver(self, handle: object) -> None:
        """Deliver the event ``handle`` to the bot once more (raise NotSupported if the
        platform never does that)."""

    def set_name(self, person: LocalId, name: str) -> None:
        """Give ``person`` the display name ``name`` (raise NotSupported if it cannot)."""

    def make_unreachable(self, person: LocalId) -> None:
        """From now on the bot can never write to ``person`` privately (they blocked it)."""

    def rate_limit(self, times: int, seconds: float) -> None:
        """The platform answers the bot's next ``times`` sends with a 429 asking to wait
        ``seconds`` (raise NotSupported if it cannot be forced)."""

    def rate_limited(self) -> int:
        """How many 429s the platform has answered the bot so far."""


@dataclass
class Outcome:
    name: str
    covered: bool
    passed: bool
    detail: str = ""


@dataclass
class KitReport:
    """What the kit covered on one platform, and how each scenario went."""

    platform: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.passed for o in self.outcomes if o.covered) and all(
            o.covered for o in self.outcomes if o.name in REQUIRED
        )

    def covered(self) -> list[str]:
        return [o.name for o in self.outcomes if o.covered and o.passed]

    def text(self) -> str:
        lines = [f"adapter kit on {self.platform}:"]
        for o in self.outcomes:
            state = ("passed" if o.passed else "FAILED") if o.covered else "not covered"
            lines.append(f"- {o.name}: {state}" + (f" ({o.detail})" if o.detail else ""))
        return "\n".join(lines)


class KitFailure(AssertionError):
    """A scenario saw something other than what people must see."""


class Run:
    """One run of the kit: the driver, and the waiting and reading that scenarios share."""

    def __init__(self, platform: Platform) -> None:
        self.p = platform
        self.notes: list[str] = []

    def cmd(self, words: str) -> str:
        return f"{self.p.command} {words}"

    def wait(self, what: str, found: Callable[[], object]) -> object:
        """Poll ``found`` until it returns something truthy, for up to ``patience``."""
        deadline = time.monotonic() + self.p.patience
        delay = 0.05
        while True:
            value = found()
            if value:
                return value
            if time.monotonic() > deadline:
                raise KitFailure(f"waited {self.p.patience:g} s for {what}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def new_to(self, person: LocalId, after: int, contains: str) -> Seen:
        """The first message to ``person`` past the ``after`` first that contains ``contains``."""

        def find() -> Seen | None:
            return next((s for s in self.p.shown_to(person)[after:] if contains in s.text), None)

        found = self.wait(f"{person} to be told {contains!r}", find)
        assert isinstance(found, Seen)
        return found

    def new_in(self, room: LocalId, after: int, contains: str) -> Seen:
        def find() -> Seen | None:
            return next((s for s in self.p.shown_in(room)[after:] if contains in s.text), None)

        found = self.wait(f"{room} to be told {contains!r}", find)
        assert isinstance(found, Seen)
        return found

    def ask(self, person: LocalId, words: str, contains: str, room: LocalId | None = None) -> Seen:
        """``person`` says the command ``words``; the answer that contains ``contains``."""
        before = len(self.p.shown_in(room) if room else self.p.shown_to(person))
        self.p.say(person, self.cmd(words), room)
        if room:
            return self.new_in(room, before, contains)
        return self.new_to(person, before, contains)

    def settle(self, person: LocalId, room: LocalId | None = None) -> int:
        """Wait until nothing new reaches ``person`` (or ``room``) for a second; how many."""

        def read() -> list[Seen]:
            return self.p.shown_in(room) if room else self.p.shown_to(person)

        count, since = len(read()), time.monotonic()
        deadline = since + self.p.patience
        while time.monotonic() - since < 1.0 and time.monotonic() < deadline:
            time.sleep(0.1)
            if len(read()) != count:
                count, since = len(read()), time.monotonic()
        return count


# -- the scenarios ---------------------------------------------------------------------------
# Each uses its own activity and people, so that they never match each other. Wishes that
# must meet are made in the same place (both in direct messages, or both in the room): a room
# is a pool of its own unless plugins.cfg joins it with others.


def wish_in_a_direct_message(r: Run) -> str:
    a = r.p.people[0]
    r.ask(a, "chess in 2h", "Waiting for chess company", None)
    return "a wish in a direct message is answered there"


def wish_in_a_room(r: Run) -> str:
    b = r.p.people[1]
    r.ask(b, "tennis in 2h", "Waiting for tennis company", r.p.room)
    return "a wish in a room is answered in the room"


def match_told_to_every_member(r: Run) -> str:
    a, b = r.p.people[0], r.p.people[1]
    seen_a = len(r.p.shown_to(a))
    r.ask(b, "chess for 3h", "Matched!", None)
    r.new_to(a, seen_a, "joins you for chess")
    return "the joiner hears Matched!, the one waiting that someone joins"


def button_or_its_command(r: Run) -> str:
    c = r.p.people[2]
    reply = r.ask(c, "karaoke for 2h", "Waiting for karaoke company", None)
    if r.p.capabilities.buttons:
        if not reply.buttons:
            raise KitFailure(f"the answer has no buttons: {reply}")
        before = len(r.p.shown_to(c))
        r.p.press(c, reply, reply.buttons[0])
        r.new_to(c, before, "Cancelled")
        return f"the button {reply.buttons[0]!r} cancels"
    written = next((ln for ln in reply.text.splitlines() if "cancel #" in ln), None)
    if written is None:
        raise KitFailure(f"no button and no cancel command written out: {reply.text!r}")
    command = written.split(": ", 1)[-1].strip()
    before = len(r.p.shown_to(c))
    r.p.say(c, command)
    r.new_to(c, before, "Cancelled")
    return f"the written command {command!r} cancels"


def group_conversation_or_its_fallback(r: Run) -> str:
    a, d = r.p.people[0], r.p.people[3]
    seen_a = len(r.p.shown_to(a))
    r.ask(a, "darts in 3h", "Waiting for darts company", None)
    r.ask(d, "darts for 4h", "Matched!", None)
    r.new_to(a, seen_a, "joins you for darts")
    if not r.p.capabilities.group_conversations:
        return "no group conversation: each member was told on their own"
    pair = frozenset({a, d})

    def found() -> bool:
        return any(pair <= members and said for members, said in r.p.groups())

    r.wait("a group conversation of the two with a message", found)
    return "a group conversation opened with both members"


def unreachable_person_their_room_is_told(r: Run) -> str:
    e, f = r.p.people[4], r.p.people[5]
    r.ask(e, "squash in 3h", "Waiting for squash company", r.p.room)
    r.p.make_unreachable(e)
    room_before = len(r.p.shown_in(r.p.room))
    r.ask(f, "squash for 4h", "Matched!", r.p.room)
    r.new_in(r.p.room, room_before, "I can't send you direct messages")
    return "the room where the wish was made is told to open a direct chat"


def rate_limit_pauses_and_loses_nothing(r: Run) -> str:
    a, b = r.p.people[0], r.p.people[1]
    before = r.p.rate_limited()
    seen_a = len(r.p.shown_to(a))
    r.ask(a, "pool in 4h", "Waiting for pool company", None)
    r.p.rate_limit(2, 1.0)
    r.p.say(b, r.cmd("pool for 5h"))
    r.new_to(a, seen_a, "joins you for pool")
    r.new_to(b, 0, "for pool")
    if r.p.rate_limited() <= before:
        raise KitFailure("the platform answered no 429")
    return f"{r.p.rate_limited() - before} 429s, both people told"


def an_event_delivered_twice_is_answered_once(r: Run) -> str:
    c = r.p.people[2]
    before = len(r.p.shown_to(c))
    handle = r.p.say(c, r.cmd("golf in 5h"))
    r.new_to(c, before, "Waiting for golf company")
    r.p.redeliver(handle)
    count = r.settle(c)
    answers = [s for s in r.p.shown_to(c)[before:count] if "golf" in s.text]
    if len(answers) != 1:
        raise KitFailure(f"answered {len(answers)} times: {[s.text for s in answers]}")
    return "the same event twice: one answer"


HOSTILE = "@everyone <b>Eve</b>\u202e\u0007 [x](http://evil)"


def hostile_display_names(r: Run) -> str:
    d, e = r.p.people[3], r.p.people[4]
    r.p.set_name(e, HOSTILE)
    seen_d = len(r.p.shown_to(d))
    r.ask(d, "bowling in 5h", "Waiting for bowling company", r.p.room)
    r.p.say(e, r.cmd("bowling for 6h"), r.p.room)
    told = r.new_to(d, seen_d, "joins you for bowling")
    bad = [ch for ch in told.text if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\n"]
    if bad:
        raise KitFailure(f"control or format characters reached a person: {bad!r}")
    return "a name with markup, a mention and control characters arrives harmless"


def restart_answers_nothing_twice_and_misses_nothing(r: Run) -> str:
    a, f = r.p.people[0], r.p.people[5]
    before_a = len(r.p.shown_to(a))
    r.ask(a, "yoga in 6h", "Waiting for yoga company", None)
    settled = r.settle(a)
    r.p.stop_bot()
    before_f = len(r.p.shown_to(f))
    r.p.say(f, r.cmd("yoga for 7h"))  # while the bot is down
    r.p.start_bot()
    r.new_to(f, before_f, "Matched!")
    r.new_to(a, settled, "joins you for yoga")
    r.settle(a)
    r.settle(f)
    waits = [s for s in r.p.shown_to(a)[before_a:] if "Waiting for yoga" in s.text]
    answers_f = [s for s in r.p.shown_to(f)[before_f:] if "Matched!" in s.text]
    if len(waits) != 1 or len(answers_f) != 1:
        raise KitFailure(f"after a restart: {len(waits)} waits to A, {len(answers_f)} to F")
    return "a wish made while the bot was down is answered once after it starts"


Scenario = Callable[[Run], str]
SCENARIOS: tuple[Scenario, ...] = (
    wish_in_a_direct_message,
    wish_in_a_room,
    match_told_to_every_member,
    button_or_its_command,
    group_conversation_or_its_fallback,
    unreachable_person_their_room_is_told,
    an_event_delivered_twice_is_answered_once,
    hostile_display_names,
    rate_limit_pauses_and_loses_nothing,
    restart_answers_nothing_twice_and_misses_nothing,
)
#: Scenarios every platform must cover (the others need what some platforms cannot force).
REQUIRED = frozenset(
    s.__name__
    for s in SCENARIOS
    if s
    not in (
        an_event_delivered_twice_is_answered_once,
        hostile_display_names,
        rate_limit_pauses_and_loses_nothing,
    )
)


def run_kit(platform: Platform, only: Sequence[str] = ()) -> KitReport:
    """Run every scenario (or ``only`` these) against ``platform``, starting the bot first
    and stopping it at the end."""
    report = KitReport(platform.name)
    run = Run(platform)
    platform.start_bot()
    try:
        for scenario in SCENARIOS:
            name = scenario.__name__
            if only and name not in only:
                continue
            try:
                detail = scenario(run)
            except NotSupported as why:
                report.outcomes.append(Outcome(name, False, False, str(why)))
            except Exception as err:  # a failure is reported, and the next scenario runs
                where = traceback.format_exc(limit=-3).strip().splitlines()[-1]
                report.outcomes.append(Outcome(name, True, False, f"{err} [{where}]"))
            else:
                report.outcomes.append(Outcome(name, True, True, detail))
    finally:
        platform.stop_bot()
    return report
