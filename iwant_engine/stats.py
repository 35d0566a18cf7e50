"""What ``!iwant stats``, the weekly digest and ``iwant stats --json`` say about a period:
the figures a storage counts (``model.StatsRows``), as text and as a chart's data.

Counts only, never who: a figure that rests on fewer than ``MIN_PEOPLE`` people reads
"fewer than 3" (a zero rests on nobody and is shown, when the period has enough people).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import messages as msg
from .errors import UserError
from .model import StatsRows, Tally

MIN_PEOPLE = 3
FEWER = f"fewer than {MIN_PEOPLE}"
#: ``week`` (the default), ``month``, ``year``: the period ending now.
PERIODS = {"week": timedelta(days=7), "month": timedelta(days=30), "year": timedelta(days=365)}
EXAMPLE = "!iwant stats month (or: week, year; admins: !iwant stats all year)"
TOP_HOURS = 3
TOP_ACTIVITIES = 5


def parse_args(args: str) -> tuple[bool, str]:
    """``[all] [week|month|year]`` in any order: (every pool, period)."""
    every, period = False, ""
    for word in args.lower().split():
        if word == "all" and not every:
            every = True
        elif word in PERIODS and not period:
            period = word
        else:
            raise UserError(f"'{msg.quote(word, 20)}' is not a period; try {EXAMPLE}.")
    return every, period or "week"


def period_range(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The period's first instant and the instant after it: it ends now."""
    return now - PERIODS[period], now


def enough(figure: Tally, base: Tally) -> bool:
    """Whether ``figure`` may be shown: it rests on enough people, or on nobody in a period
    with enough people."""
    return figure.people >= MIN_PEOPLE or (figure.count == 0 and base.people >= MIN_PEOPLE)


def count_text(figure: Tally, base: Tally) -> str:
    return str(figure.count) if enough(figure, base) else FEWER


def share(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "-"


def duration(seconds: int) -> str:
    """``40 s``, ``25 min``, ``3 h 10 min``, ``2 days``."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h" + (f" {rest} min" if rest else "")
    return f"{round(minutes / 1440)} days"


def lines(rows: StatsRows, where: str, period: str, zone: ZoneInfo) -> list[str]:
    """The figures as lines of text: a heading, then one line each."""
    base = rows.wishes
    heading = f"iwant {where}, the last {PERIODS[period].days} days:"
    if base.people < MIN_PEOPLE:
        return [heading, f"Wishes from {FEWER} people, so no figures (counts only, never who)."]
    met_people = rows.met
    groups = Tally(rows.groups, rows.met.people)
    out = [heading, f"- wishes: {base.count} from {base.people} people; groups formed: "
           f"{count_text(groups, base)}"]  # fmt: skip
    met = share(rows.met.count, base.count) if enough(met_people, base) else FEWER
    line = f"- wishes that met someone: {met}"
    if rows.answered.people >= MIN_PEOPLE:
        line += (
            f"; {share(rows.reported_met, rows.answered.count)} of the "
            f"{rows.answered.count} groups that answered said they met"
        )
    elif rows.answered.count:
        line += f"; {FEWER} people answered whether they met"
    out.append(line)
    if rows.median_wait_seconds is not None:
        wait = duration(rows.median_wait_seconds) if enough(met_people, base) else FEWER
        out.append(f"- median wait until a wish found company: {wait}")
    out.append(
        f"- near misses taken: {count_text(rows.suggestions, base)}; first-time pairs: "
        f"{count_text(rows.first_pairs, base)}"
    )
    hours = sorted(
        ((h, t) for h, t in rows.hours.items() if t.people >= MIN_PEOPLE),
        key=lambda ht: (-ht[1].count, ht[0]),
    )[:TOP_HOURS]
    busiest = ", ".join(f"{h:02d}:00 ({t.count})" for h, t in hours)
    out.append(f"- busiest hours ({zone.key}): {busiest or FEWER + ' people at any hour'}")
    named = sorted(
        ((a, t) for a, t in rows.activities.items() if t.people >= MIN_PEOPLE),
        key=lambda at: (-at[1].count, at[0]),
    )
    shown = ", ".join(f"{a} ({t.count})" for a, t in named[:TOP_ACTIVITIES])
    hidden = len(rows.activities) - len(named)
    if hidden:
        shown += ("; and " if shown else "") + f"{hidden} with {FEWER} people each"
    out.append(f"- activities: {shown}")
    return out


def text(rows: StatsRows, where: str, period: str, zone: ZoneInfo) -> str:
    return "\n".join(lines(rows, where, period, zone))


def days_of(since: datetime, until: datetime, zone: ZoneInfo) -> list[date]:
    """The local days the period touches, in order."""
    first, last = since.astimezone(zone).date(), until.astimezone(zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def chart(
    rows: StatsRows, since: datetime, until: datetime, zone: ZoneInfo, title: str
) -> dict[str, Any]:
    """A digest chart's data: per local day, wishes and the share that met someone (None
    for a day of fewer than 3 people). Plain JSON: it travels in the outbox."""
    days = []
    for day in days_of(since, until, zone):
        tally = rows.days.get(day)
        shown = tally is not None and tally.people >= MIN_PEOPLE
        days.append(
            {
                "label": msg.date_text(day),
                "wishes": tally.wishes if shown and tally else (0 if tally is None else None),
                "met_share": round(tally.met / tally.wishes, 3)
                if shown and tally and tally.wishes
                else None,
            }
        )
    return {"title": title, "days": days, "hidden": FEWER}


def as_dict(rows: StatsRows, scope: str, period: str, since: datetime, until: datetime,
            zone: ZoneInfo) -> dict[str, Any]:  # fmt: skip
    """The figures for ``iwant stats --json``, with "fewer than 3" where the chat shows it."""
    base = rows.wishes

    def figure(count: int, people: int) -> int | str:
        return count if enough(Tally(count, people), base) else FEWER

    hidden = base.people < MIN_PEOPLE
    return {
        "scope": scope,
        "period": period,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "zone": zone.key,
        "wishes": FEWER if hidden else base.count,
        "people": FEWER if hidden else base.people,
        "wishes_met": figure(rows.met.count, rows.met.people),
        "groups": figure(rows.groups, rows.met.people),
        "groups_answered": figure(rows.answered.count, rows.answered.people),
        "groups_reported_met": figure(rows.reported_met, rows.answered.people),
        "median_wait_seconds": (rows.median_wait_seconds if enough(rows.met, base) else FEWER),
        "near_misses_taken": figure(rows.suggestions.count, rows.suggestions.people),
        "first_time_pairs": figure(rows.first_pairs.count, rows.first_pairs.people),
        "hours": {f"{h:02d}": figure(t.count, t.people) for h, t in sorted(rows.hours.items())},
        "activities": {a: figure(t.count, t.people) for a, t in sorted(rows.activities.items())},
        "days": {
            d.isoformat(): {
                "wishes": figure(t.wishes, t.people),
                "met": figure(t.met, t.people),
            }
            for d, t in sorted(rows.days.items())
        },
    }
