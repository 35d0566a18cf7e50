"""Every text the engine sends or replies, rendered in its recipient's time zone."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .model import Beat, Invite, OpenRequest, OutboxDepth, Status

if TYPE_CHECKING:
    from .model import Suggestion


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    zone: ZoneInfo


@dataclass(frozen=True)
class Note:
    """One message for one person: the reply to a command, or an outbox row."""

    to: str
    body: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    request_id: int | None = None  # the request this answers, acknowledged once sent
    # Whether the command may have queued notifications to deliver now (False: it did not).
    queued: bool = True
    # Calendar invites of the groups this answer is about (issue 27).
    invites: tuple[Invite, ...] = ()


#: Unicode categories never echoed: controls, formats (zero-width, bidi overrides),
#: surrogates, private use, unassigned.
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn"}


def visible(text: str) -> str:
    """``text`` without control and format characters, whitespace runs as one space."""
    if text.isprintable():  # False for every hidden character: most texts skip the loop
        return " ".join(text.split())
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in _HIDDEN or ch in " \t")
    return " ".join(kept.split())


def quote(text: str, limit: int = 30) -> str:
    """A piece of what someone typed, safe to echo: visible characters only, at most
    ``limit`` of them (an ellipsis marks the cut)."""
    shown = visible(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def cancel_button(request_id: int, label: str = "Cancel") -> list[dict[str, str]]:
    return [{"label": label, "command": f"iwant cancel #{request_id}"}]


def _names(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def and_list(names: Sequence[str]) -> str:
    """``Bob``, ``Bob and Carol``, ``Bob, Carol and Dan``."""
    return _names(names)


# English names whatever the process's locale (``%a`` and ``%b`` follow LC_TIME), and
# formatted without strftime, which costs several times more on every reply.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_text(day: date) -> str:
    """``Tue 1 Dec``"""
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def day(moment: datetime, zone: tzinfo) -> str:
    return date_text(moment.astimezone(zone))


def clock(moment: datetime, zone: tzinfo) -> str:
    """``09:30``"""
    local = moment.astimezone(zone)
    return f"{local.hour:02d}:{local.minute:02d}"


def slot(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """``10:00–10:15 (Tue 1 Dec)``"""
    return f"{clock(start, zone)}–{clock(end, zone)} ({day(start, zone)})"


def waiting(
    activity: str,
    earliest: datetime,
    latest: datetime,
    length_minutes: int,
    deadline: datetime,
    zone: ZoneInfo,
) -> str:
    if (latest - earliest).total_seconds() == length_minutes * 60:
        when = f"at {slot(earliest, latest, zone)}"
    else:
        when = (
            f"any time between {clock(earliest, zone)} and {clock(latest, zone)} "
            f"({day(earliest, zone)})"
        )
    return f"Waiting for {activity} company {when}; you'll hear by {clock(deadline, zone)}."


def matched_reply(
    activity: str,
    start: datetime,
    end: datetime,
    others: Sequence[str],
    zone: ZoneInfo,
    joined_existing: bool,
) -> str:
    verb = "You join" if joined_existing else "Matched! You meet"
    return f"{verb} {_names(others)} for {activity} at {slot(start, end, zone)}."


def joined(
    activity: str,
    start: datetime,
    end: datetime,
    newcomers: Sequence[str],
    members: Sequence[str],
    zone: ZoneInfo,
) -> str:
    verb = "joins" if len(newcomers) == 1 else "join"
    text = f"{_names(newcomers)} {verb} you for {activity} at {slot(start, end, zone)}."
    if len(members) > 2:
        text += f" The group: {_names(members)}."
    return text


def dropped_out(
    activity: str,
    start: datetime,
    end: datetime,
    who: str,
    remaining: Sequence[str],
    zone: ZoneInfo,
) -> str:
    return (
        f"{who} dropped out of {activity} at {slot(start, end, zone)}; "
        f"still going: {_names(remaining)}."
    )


def alone_again(
    activity: str, start: datetime, end: datetime, who: str, deadline: datetime, zone: ZoneInfo
) -> str:
    return (
        f"{who} dropped out of {activity} at {slot(start, end, zone)}; you're waiting for "
        f"company again and will hear by {clock(deadline, zone)}."
    )


def nobody_left(activity: str, start: datetime, end: datetime, who: str, zone: ZoneInfo) -> str:
    return (
        f"{who} dropped out of {activity} at {slot(start, end, zone)} and nobody is left; "
        "your request has ended. Ask again with !iwant."
    )


def expired(
    activity: str, earliest: datetime, latest: datetime, min_size: int, zone: ZoneInfo
) -> str:
    when = f"between {clock(earliest, zone)} and {clock(latest, zone)} ({day(earliest, zone)})"
    if min_size > 2:
        return (
            f"Fewer than {min_size} people could make {activity} {when}, so it is not "
            "happening. Maybe next time!"
        )
    return f"Nobody joined you for {activity} {when}. Maybe next time!"


def group_hello(
    activity: str, names: Sequence[str], start: datetime, end: datetime, zone: ZoneInfo
) -> str:
    """For a group conversation, one text for all: its time in ``zone`` (the first member's),
    named, since the members may live in different zones."""
    return (
        f"Your {activity} group: {_names(names)}, at {clock(start, zone)}–{clock(end, zone)} "
        f"{zone.key} time ({day(start, zone)}). Say hi and agree where to meet!"
    )


def too_many_open(count: int) -> str:
    return (
        f"You already have {count} open requests, the most I keep for one person; "
        "cancel one first (!iwant list, then !iwant cancel 2)."
    )


def already_want(activity: str, earliest: datetime, latest: datetime, zone: ZoneInfo) -> str:
    return (
        f"You already want {activity} {slot(earliest, latest, zone)}; cancel it first with "
        f"!iwant cancel {activity}."
    )


def already_meeting(
    activity: str, start: datetime, end: datetime, others: Sequence[str], zone: ZoneInfo
) -> str:
    """A second wish that overlaps one already matched: the meeting, not the window asked
    (begun as ``already_want``: a refusal of either kind starts the same)."""
    who = f"you meet {_names(others)}" if others else "your group meets"
    return (
        f"You already want {activity}: {who} at {slot(start, end, zone)}; to ask again, "
        f"leave that first with !iwant cancel {activity}."
    )


NOT_YOURS = "That request is not yours, so I left it alone; see !iwant list."


def already_ended(activity: str) -> str:
    return f"Your {activity} request has already ended; see !iwant list."


def cancelled(activity: str, earliest: datetime, latest: datetime, zone: ZoneInfo) -> str:
    return f"Cancelled: {activity} {slot(earliest, latest, zone)}."


def left_group(activity: str, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    return f"Cancelled: you left {activity} at {slot(start, end, zone)}; the others have been told."


_ENDED = {Status.CANCELLED: "cancelled", Status.EXPIRED: "ended: nobody joined"}


def request_line(item: OpenRequest, zone: ZoneInfo) -> str:
    """One request as its person reads it (``!iwant list``, a repeated answer): its window
    and state, or the meeting and who comes."""
    if item.status in _ENDED or item.status == Status.DONE:
        window = f"{clock(item.earliest, zone)}–{clock(item.latest, zone)}"
        state = _ENDED.get(item.status, "over")
        return f"{item.activity} {window} ({day(item.earliest, zone)}), {state}"
    if item.status == Status.MATCHED and item.start and item.end:
        return (
            f"{item.activity} at {slot(item.start, item.end, zone)} with {', '.join(item.others)}"
        )
    window = f"{clock(item.earliest, zone)}–{clock(item.latest, zone)}"
    return (
        f"{item.activity} {window} ({day(item.earliest, zone)}), waiting; "
        f"you'll hear by {clock(item.deadline, zone)}"
    )


def answered_already(what: str) -> str:
    return f"I have that one already: {what}."


def saved_after_all(what: str) -> str:
    return f"Saved: {what}."


def answer_again(what: str) -> str:
    return f"In case my answer did not reach you: your request is {what}."


def rematched_after_drop_out(who: str, body: str) -> str:
    return f"{who} dropped out. {body}"


# -- standing wishes -----------------------------------------------------------------------------


def from_standing(body: str, activity: str) -> str:
    """A message about a wish made by a standing wish says so, and how to stop it."""
    return f"{body} (From your standing {activity} wish; !iwant stop {activity} ends it.)"


def standing_started(what: str, number: int, lead_hours: int, zone: ZoneInfo) -> str:
    if lead_hours == 0:
        when = "at midnight"
    elif lead_hours <= 24:
        when = f"at {24 - lead_hours:02d}:00 the day before"
    else:
        when = f"{lead_hours} hours before each day begins"
    return (
        f"Standing wish {number}: {what}. Each day at its time in your time zone "
        f"({zone.key}; later days follow !iwant tz). I make each day's wish {when}, and you "
        "hear when "
        f"someone joins; !iwant standing lists them, !iwant stop {number} ends this one."
    )


def standing_zone(zone: ZoneInfo) -> str:
    """Which zone a person's standing wishes use: theirs, whichever it is on each day."""
    return f"each day at its time in your time zone ({zone.key}; later days follow !iwant tz)"


def standing_follow_zone(
    later: Sequence[tuple[str, date]],
    kept: Sequence[tuple[str, datetime, datetime]],
    zone: ZoneInfo,
) -> str:
    """After ``!iwant tz``: standing wishes (``later``: each described, with its next day)
    follow the new zone; the wishes already made from them (``kept``) keep their time."""
    days = "; ".join(f"{what} from {date_text(first)}" for what, first in later)
    text = f"Your standing wishes follow it, at their times in {zone.key}: {days}."
    if kept:
        made = "; ".join(f"{activity} at {slot(start, end, zone)}" for activity, start, end in kept)
        text += f" Made before the change, these keep their time: {made}."
    return text


def standing_day(day_text: str, body: str) -> str:
    return f"{day_text}: {body}"


def standing_first(day_text: str) -> str:
    return f"The first one is for {day_text}."


def standing_not_made(activity: str, day_text: str, why: str) -> str:
    return f"I did not make your standing {activity} wish for {day_text}: {why}"


def no_standing() -> str:
    return "You have no standing wishes. Start one with !iwant lunch 12:00 every weekday."


# -- near misses ---------------------------------------------------------------------------------


def _day_word(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    """What to type before a time so that it means ``moment``'s day: "", "tomorrow " or a
    weekday (wishes are at most a week ahead)."""
    days = (moment.astimezone(zone).date() - now.astimezone(zone).date()).days
    if days <= 0:
        return ""
    return "tomorrow " if days == 1 else f"{moment.astimezone(zone):%A} ".lower()


def wish_command(activity: str, start: datetime, now: datetime, zone: ZoneInfo) -> str:
    """``!iwant lunch 13:30`` (``tomorrow 13:30``, ``friday 13:30``): a whole wish at
    ``start``."""
    return f"!iwant {activity} {_day_word(start, now, zone)}{clock(start, zone)}"


def _spans(spans: Sequence[tuple[datetime, datetime]], zone: ZoneInfo) -> str:
    return and_list([f"{clock(s, zone)}–{clock(e, zone)}" for s, e in spans])


def calendar_trimmed(
    free: tuple[datetime, datetime], busy: Sequence[tuple[datetime, datetime]], zone: ZoneInfo
) -> str:
    """What a person's calendar did to their wish's window (only their own busy times)."""
    return (
        f"By your calendar: free {clock(free[0], zone)}–{clock(free[1], zone)}; you have "
        f"something {_spans(busy, zone)}."
    )


def calendar_busy(
    activity: str,
    busy: Sequence[tuple[datetime, datetime]],
    next_start: datetime | None,
    now: datetime,
    zone: ZoneInfo,
) -> str:
    """A wish wholly inside the person's busy time, with the next free time as a command."""
    text = f"By your calendar you have something {_spans(busy, zone)}, all of that time"
    if next_start is None:
        return text + f"; try another day, like !iwant {activity} tomorrow 12:00."
    return (
        text
        + f"; you are free next at {clock(next_start, zone)}: "
        + wish_command(activity, next_start, now, zone)
        + "."
    )


def suggestion_command(
    s: Suggestion, activity: str, zone: ZoneInfo, now: datetime, replaces: int | None
) -> str:
    """The command that turns a near miss into a match (without the leading ``!``)."""
    command = f"iwant {activity} {_day_word(s.start, now, zone)}{clock(s.start, zone)}"
    if s.max_size is not None:
        command += f" max {s.max_size}"
    return command + (f" instead of #{replaces}" if replaces is not None else "")


def suggestion(
    s: Suggestion, activity: str, my_max: int, zone: ZoneInfo, now: datetime, replaces: int | None
) -> str:
    """``Nearest: 2 people want coffee at 10:30–10:45 (Tue 1 Dec); !iwant coffee 10:30
    instead of #3 meets them.`` Counts, never names."""
    command = "!" + suggestion_command(s, activity, zone, now, replaces)
    when = slot(s.start, s.end, zone)
    if s.group is None:
        who = "someone wants" if s.people == 1 else f"{s.people} people want"
        return f"Nearest: {who} {activity} at {when}; {command} meets them."
    full = f", full for your max {my_max}" if s.max_size is not None else ""
    return (
        f"Nearest: a group of {s.people} meets for {activity} at {when}{full}; {command} joins it."
    )


def with_suggestions(
    body: str,
    buttons: list[dict[str, str]],
    found: Sequence[Suggestion],
    activity: str,
    my_max: int,
    zone: ZoneInfo,
    now: datetime,
    replaces: int | None,
) -> tuple[str, list[dict[str, str]]]:
    """``body`` and ``buttons`` with a line and a button for each near miss."""
    lines, more = [body], list(buttons)
    for s in found:
        lines.append(suggestion(s, activity, my_max, zone, now, replaces))
        label = f"{activity.capitalize()} {clock(s.start, zone)}"
        more.append(
            {"label": label, "command": suggestion_command(s, activity, zone, now, replaces)}
        )
    return "\n".join(lines), more


def replaced(activity: str, earliest: datetime, latest: datetime, zone: ZoneInfo) -> str:
    return f"Your {activity} wish {slot(earliest, latest, zone)} is cancelled."


def not_possible_any_more(why: str, activity: str, earliest: datetime, latest: datetime,
                          zone: ZoneInfo) -> str:  # fmt: skip
    return (
        f"That is not possible any more: {why}. Your {activity} wish "
        f"{slot(earliest, latest, zone)} stays as it was."
    )


def unnamed(body: str, name: str) -> str:
    """``body`` with a forgotten person's ``name``, as a whole word, replaced by "someone"."""
    body = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", "someone", body)
    return "Someone" + body[len("someone") :] if body.startswith("someone") else body


# -- operations (``!iwant status``, admins) ---------------------------------------------------


def ago(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h``, ``2 days``: a rough length of time."""
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def status_report(
    version: str,
    storage: str,
    problem: str | None,
    depths: Sequence[OutboxDepth],
    beats: Sequence[Beat],
    now: datetime,
) -> str:
    """``!iwant status``: what an admin checks first, in a few lines."""
    reachable = "reachable" if problem is None else f"UNREACHABLE ({problem})"
    lines = [f"iwant {version}, storage {storage}, database {reachable}."]
    if problem is None:
        waiting = ", ".join(
            f"{d.platform} {d.depth} (oldest {ago((now - d.oldest).total_seconds())})"
            for d in depths
        )
        lines.append(f"Outbox: {waiting or 'empty'}.")
    limited = [b for b in beats if b.last_429_at is not None]
    if limited:
        last = max(limited, key=lambda b: b.last_429_at or now)
        assert last.last_429_at is not None
        lines.append(
            f"Last 429: {ago((now - last.last_429_at).total_seconds())} ago on "
            f"{last.platform} ({last.process}), paused {last.last_429_seconds or 0:g} s."
        )
    else:
        lines.append("Last 429: none seen by a live process.")
    lines.append(f"Processes seen in the last minute: {len(beats)}.")
    lines.extend(
        f"- {b.process} {b.platform} {b.version}, up {ago((now - b.started_at).total_seconds())}, "
        f"seen {ago((now - b.seen_at).total_seconds())} ago"
        for b in beats
    )
    return "\n".join(lines)
