"""Standing wishes: ``lunch 12:00 every weekday`` made anew as a wish for every chosen day.

A standing wish is stored once (``model.Standing``). For each of its days, ``make_due``
makes that day's wish ``standing_lead`` before the day begins in the person's zone, through
``matching.submit`` like a typed one, with the event key ``standing:<id>:<day>``: the key is
unique, and the day to make next only moves forward in the unit of work that makes it, so
several processes make each day's wish once. A day's wish is an ordinary request from then on
(listed, cancelled alone, counted against the open-request cap); the messages about it say
which standing wish it came from.

Days are calendar days in the person's zone: ``12:00`` is 12:00 local on every day, across
daylight-saving changes. A skipped or paused day is passed over; a day whose time has passed
is never made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import messages as msg
from .errors import DuplicateEvent, UserError
from .grammar import DAY_NAMES, day_names, is_number
from .matching import STANDING_KEY
from .model import Changes, NewOutbox, PersonInfo, Standing, Wish
from .storage.protocol import UnitOfWork

#: The longest pause, in days; the most days left out of one standing wish at a time.
MAX_PAUSE_DAYS = 365
MAX_SKIPS = 10

#: ``(standing wish, reference time, zone) -> Wish``: the engine reads the standing wish's
#: text as typed at the reference time (``UserError`` for a text that is not a wish).
WishReader = Callable[[Standing, datetime, ZoneInfo], Wish]
#: ``(unit of work, wish, person, origin, event key) -> (answer, matched)``: the engine's
#: submission (``matching.submit``) with its strategy and limits.
Submitter = Callable[[UnitOfWork, Wish, PersonInfo, "str | None", str], tuple[msg.Note, bool]]


def event_key(standing_id: int, day: date) -> str:
    return f"{STANDING_KEY}{standing_id}:{day.isoformat()}"


def describe(standing: Standing) -> str:
    return f"{standing.text}, every {day_names(standing.days)}"


def on_or_after(days: frozenset[int], first: date) -> date:
    """The first day from ``first`` on whose weekday is in ``days``."""
    for n in range(7):
        day = first + timedelta(days=n)
        if day.weekday() in days:
            return day
    raise ValueError("a standing wish has at least one day")


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight of ``day`` in ``zone``, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def scheduled(standing: Standing, day: date, zone: ZoneInfo, lead: timedelta) -> Standing:
    """``standing`` with ``day`` as the next day to make, made ``lead`` before it begins."""
    return replace(standing, next_day=day, create_at=day_start(day, zone) - lead)


def left_out(standing: Standing, day: date) -> bool:
    paused = standing.paused_until is not None and day < standing.paused_until
    return paused or day in standing.skips


def new(
    person: str,
    pool: str,
    origin: str | None,
    activity: str,
    text: str,
    days: frozenset[int],
    now: datetime,
    zone: ZoneInfo,
    lead: timedelta,
) -> Standing:
    """A standing wish to store; its first day is today's date in ``zone`` or later."""
    today = now.astimezone(zone).date()
    fresh = Standing(0, person, pool, origin, activity, text, days, now, today, None)
    return scheduled(fresh, on_or_after(days, today), zone, lead)


@dataclass(frozen=True)
class Made:
    """What happened to one day of a standing wish: its answer (waiting or matched), or why
    it was not made."""

    day: date
    note: msg.Note | None = None
    matched: bool = False
    problem: str | None = None


def make_due(
    uow: UnitOfWork,
    standing: Standing,
    me: PersonInfo,
    now: datetime,
    zone: ZoneInfo,
    lead: timedelta,
    read: WishReader,
    submit: Submitter,
) -> tuple[Standing, list[Made]]:
    """Make every day's wish of ``standing`` that is due at ``now`` (normally one); the
    standing wish scheduled for its next day, and what happened to each day made or refused.
    Days skipped, paused, or whose time has passed are passed over silently."""
    made: list[Made] = []
    day = on_or_after(standing.days, max(standing.next_day, now.astimezone(zone).date()))
    while day_start(day, zone) - lead <= now:
        if not left_out(standing, day):
            done = _make_day(uow, standing, day, me, now, zone, read, submit)
            if done is not None:
                made.append(done)
        day = on_or_after(standing.days, day + timedelta(days=1))
    return scheduled(standing, day, zone, lead), made


def _make_day(
    uow: UnitOfWork,
    standing: Standing,
    day: date,
    me: PersonInfo,
    now: datetime,
    zone: ZoneInfo,
    read: WishReader,
    submit: Submitter,
) -> Made | None:
    try:
        wish = read(standing, day_start(day, zone), zone)
    except UserError as err:  # the text no longer reads (an activity was removed, say)
        return Made(day, problem=str(err))
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if wish.deadline < minute or wish.latest - wish.length < minute:
        return None  # its time has passed: never made
    if wish.earliest < minute:
        wish = replace(wish, earliest=minute)
    wish = replace(wish, person=me.canonical or me.id)  # a linked account's is its person's
    try:
        note, matched = submit(uow, wish, me, standing.origin, event_key(standing.id, day))
    except UserError as err:  # too many open requests, or the same activity then already
        return Made(day, problem=str(err))
    except DuplicateEvent:
        return None  # made already
    return Made(day, note, matched)


def sweep_step(
    uow: UnitOfWork,
    now: datetime,
    batch: int,
    zone_of: Callable[[PersonInfo | None], ZoneInfo],
    lead: timedelta,
    read: WishReader,
    submit: Submitter,
) -> int:
    """Make the due days of up to ``batch`` standing wishes; how many standing wishes were
    looked at. A day matched at once, or refused, is told to its person; one that waits is
    not (they asked for it once, in their own words)."""
    due = uow.due_standing(now, batch)
    if not due:
        return 0
    people = uow.people({s.person for s in due})
    linked = {i.canonical for i in people.values() if i.canonical}
    people = {**uow.people(linked), **people} if linked else people
    notes = Changes()
    for standing in due:
        info = people.get(standing.person)
        me = info or PersonInfo(standing.person, standing.person.split(":", 1)[-1])
        zone = zone_of(people.get(me.canonical) if me.canonical else info)  # the person's
        scheduled_next, made = make_due(uow, standing, me, now, zone, lead, read, submit)
        uow.save_standing(scheduled_next)
        for m in made:
            if m.problem is not None:
                body = msg.standing_not_made(standing.activity, msg.date_text(m.day), m.problem)
                notes.outbox.append(NewOutbox(standing.person, body, [], standing.origin))
            elif m.matched and m.note is not None:
                body = msg.from_standing(m.note.body, standing.activity)
                notes.outbox.append(
                    NewOutbox(
                        standing.person,
                        body,
                        m.note.buttons,
                        standing.origin,
                        invites=m.note.invites,
                    )  # fmt: skip
                )
    if notes:
        uow.apply(notes, now)
    return len(due)


# -- the person's commands -----------------------------------------------------------------------


def listing(standing: Sequence[Standing], today: date, zone: ZoneInfo) -> str:
    """``!iwant standing``: the person's standing wishes, numbered, and the zone their days
    follow (the person's, ``zone`` today)."""
    if not standing:
        return msg.no_standing()
    lines = [f"Your standing wishes, {msg.standing_zone(zone)}:"]
    for n, s in enumerate(standing, 1):
        extra = ""
        if s.paused_until is not None and s.paused_until > today:
            extra += f"; paused until {msg.date_text(s.paused_until)}"
        skipped = sorted(d for d in s.skips if d >= today)
        if skipped:
            extra += "; skipping " + ", ".join(msg.date_text(d) for d in skipped)
        lines.append(f"{n}. {describe(s)}{extra}")
    lines.append("Stop one with !iwant stop 1; skip a day with !iwant skip friday.")
    return "\n".join(lines)


def select(standing: Sequence[Standing], selector: str) -> Standing:
    """By list number (``2``), activity (``lunch``) or the only one."""
    if not standing:
        raise UserError(msg.no_standing())
    if not selector:
        if len(standing) == 1:
            return standing[0]
        raise UserError(
            f"You have {len(standing)} standing wishes; say which: !iwant stop 1 (numbers "
            f"from !iwant standing) or !iwant stop {standing[0].activity}."
        )
    if is_number(selector):
        if not 1 <= int(selector) <= len(standing):
            raise UserError(
                f"There is no standing wish {msg.quote(selector, 6)}; you have "
                f"{len(standing)}. See !iwant standing."
            )
        return standing[int(selector) - 1]
    same = [s for s in standing if s.activity == selector]
    if len(same) == 1:
        return same[0]
    if same:
        raise UserError(
            f"You have {len(same)} standing {selector} wishes; say which by number: "
            "!iwant stop 1 (see !iwant standing)."
        )
    raise UserError(
        f"You have no standing {msg.quote(selector, 24)} wish; see !iwant standing, then "
        "!iwant stop 1."
    )


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPAN = re.compile(r"^(?:for\s+)?(\d{1,3})\s*(d|days?|w|wks?|weeks?)$")
_MONTH_DAY = ("%d %b", "%b %d", "%d %B", "%B %d")


def parse_day(phrase: str, today: date, example: str) -> date:
    """``today``, ``tomorrow``, a weekday (the next one, today included), ``2026-12-14`` or
    ``14 dec``: the date meant, today or later."""
    phrase = " ".join(phrase.lower().replace(",", " ").split())
    if phrase == "today":
        return today
    if phrase == "tomorrow":
        return today + timedelta(days=1)
    names = {name: i for i, name in enumerate(DAY_NAMES)}
    names.update({name[:3]: i for i, name in enumerate(DAY_NAMES)})
    if phrase in names:
        return on_or_after(frozenset({names[phrase]}), today)
    if _ISO.match(phrase):
        try:
            day = date.fromisoformat(phrase)
        except ValueError:
            day = None
        if day is not None:
            if day < today:
                raise UserError(f"{msg.date_text(day)} has passed; try {example}.")
            return day
    for fmt in _MONTH_DAY:
        try:  # read in a leap year, so that 29 Feb is a day
            parsed = datetime.strptime(f"{phrase} 2000", f"{fmt} %Y").date()
        except ValueError:
            continue
        for year in range(today.year, today.year + 8):
            try:
                day = parsed.replace(year=year)
            except ValueError:  # 29 Feb outside a leap year
                continue
            if day >= today:
                return day
    raise UserError(f"I can't read the day '{msg.quote(phrase, 24)}'; try {example}.")


def parse_pause(phrase: str, today: date) -> date:
    """The first day back of ``until 2026-12-14``, ``until friday``, ``2 weeks``, ``10 days``."""
    example = "!iwant pause until 2026-12-14 (or !iwant pause 2 weeks)"
    phrase = " ".join(phrase.lower().split())
    if not phrase:
        raise UserError(f"Say until when, like {example}.")
    if span := _SPAN.match(phrase):
        count = int(span[1])
        back = today + timedelta(days=count * (7 if span[2].startswith("w") else 1))
    else:
        back = parse_day(phrase.removeprefix("until ").strip(), today, example)
    if back <= today:
        raise UserError(f"A pause ends after today; try {example}.")
    if back > today + timedelta(days=MAX_PAUSE_DAYS):
        raise UserError(f"A pause lasts at most {MAX_PAUSE_DAYS} days; try {example}.")
    return back
