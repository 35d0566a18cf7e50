"""Standing wishes (``!iwant lunch 12:00 every weekday``): adding one, listing, stopping,
skipping a day, pausing and resuming them, and the sweep that makes each day's wish. Chat words
in, the domain rules of ``standing.py`` applied through units of work, replies out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from . import matching, standing
from . import messages as msg
from .clock import Clock
from .errors import UserError
from .grammar import is_number
from .identity import Identity, check_person
from .model import LIVE, Person, PersonInfo, Standing, Wish
from .requests import Requests
from .settings import Settings
from .storage.protocol import Storage

#: Standing wishes made per unit of work: each takes its person's and pool's locks.
STANDING_BATCH = 20


class StandingWishes:
    """A person's standing wishes, and the days' wishes made from them."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        identity: Identity,
        requests: Requests,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.identity = identity
        self.requests = requests

    def add(
        self, person: Person, text: str, days: frozenset[int], room: str | None = None
    ) -> msg.Note:
        """Store ``text`` (a wish) as a standing wish for ``days`` (0 = Monday) and make the
        days already due (today's, if its time has not passed); the reply says what was made."""
        check_person(person)
        now = self.clock.now()
        zone = self.identity.zone_of(person)
        pool = self.requests.pool_for(person, room)
        lead = self.settings.standing_lead
        # The text must read as a wish on its days, whatever today's time is.
        probe = standing.on_or_after(days, now.astimezone(zone).date() + timedelta(days=1))
        wish = self.requests.read_wish(
            person.id, pool, text, standing.day_start(probe, zone), zone
        )[0]
        origin = f"{person.platform}:{room}" if room else None
        fresh = standing.new(person.id, pool, origin, wish.activity, text, days, now, zone, lead)
        me = PersonInfo(person.id, person.name[: matching.NAME_MAX], None, person.timezone)
        observed: list[str] = []
        with self.storage.transaction() as uow:
            uow.add_person(me)
            main = self.identity.as_person(person).id
            me = replace(me, canonical=main if main != person.id else None)
            mine = uow.standing(person.id)
            for n, other in enumerate(mine, 1):
                if (other.text, other.days) == (fresh.text, fresh.days):
                    raise UserError(
                        f"You have that standing wish already (number {n}); see !iwant standing."
                    )
            if len(mine) >= self.settings.max_standing:
                raise UserError(
                    f"You have {len(mine)} standing wishes, the most I keep for one person; "
                    "stop one first (!iwant standing, then !iwant stop 1)."
                )
            stored = replace(fresh, id=uow.add_standing(fresh))
            upcoming, made = standing.make_due(
                uow,
                stored,
                me,
                now,
                zone,
                lead,
                self._read,
                self.requests.submitter(now, observed),
            )
            uow.save_standing(upcoming)
        self.requests.observe_all(observed)
        hours = int(lead.total_seconds() // 3600)
        lines = [msg.standing_started(standing.describe(stored), len(mine) + 1, hours, zone)]
        for m in made:
            body = m.problem or (m.note.body if m.note else "")
            lines.append(msg.standing_day(msg.date_text(m.day), body))
        if not made:
            lines.append(msg.standing_first(msg.date_text(upcoming.next_day)))
        buttons = [{"label": "Stop it", "command": f"iwant stop #{stored.id}"}]
        return msg.Note(person.id, "\n".join(lines), buttons)

    def listing(self, person: Person) -> str:
        """``!iwant standing``: the person's standing wishes, numbered."""
        check_person(person)
        _, zone, today = self.identity.today(person)
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id)
        return standing.listing(mine, today, zone)

    def stop(self, person: Person, selector: str = "") -> str:
        """End a standing wish, by number (``2``), activity (``lunch``) or id (``#12``)."""
        check_person(person)
        now, _, today = self.identity.today(person)
        selector = " ".join(selector.lower().split())
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id, claim=True)
            if selector.startswith("#") and is_number(selector[1:]):
                found = [s for s in mine if s.id == int(selector[1:])]
                if not found:
                    raise UserError("That standing wish has ended already; see !iwant standing.")
                chosen = found[0]
            else:
                chosen = standing.select(mine, selector)
            uow.save_standing(replace(chosen, ended_at=now, create_at=None))
        text = f"Stopped: {standing.describe(chosen)}."
        if self._made_live(chosen, today, chosen.next_day):
            text += (
                f" The {chosen.activity} wish already made from it stays; "
                f"!iwant cancel {chosen.activity} cancels it."
            )
        return text

    def _made_live(self, wish: Standing, first: date, until: date) -> list[int]:
        """Ids of the live requests ``wish`` made for the days ``first`` to before ``until``."""
        ids = []
        day = first
        while day < until:
            request = self.storage.request_by_event(standing.event_key(wish.id, day))
            if request is not None and request.status in LIVE:
                ids.append(request.id)
            day += timedelta(days=1)
        return ids

    def skip(self, person: Person, args: str) -> str:
        """``!iwant skip friday`` (or ``skip lunch friday``): leave one day out of every
        standing wish on that day (or of the one for ``lunch``); a wish already made for that
        day is cancelled."""
        check_person(person)
        _, _, today = self.identity.today(person)
        words = " ".join(args.lower().split()).split(" ")
        example = "!iwant skip friday (or !iwant skip lunch friday)"
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id, claim=True)
            if not mine:
                raise UserError(msg.no_standing())
            activity = None
            if len(words) > 1 and any(s.activity == words[0] for s in mine):
                activity, words = words[0], words[1:]
            day = standing.parse_day(" ".join(words), today, example)
            chosen = [s for s in mine if activity in (None, s.activity) and day.weekday() in s.days]
            if not chosen:
                raise UserError(
                    f"None of your standing {activity + ' ' if activity else ''}wishes is on "
                    f"{msg.date_text(day)}; see !iwant standing."
                )
            for s in chosen:
                kept = frozenset(d for d in s.skips if d >= today) | {day}
                if len(kept) > standing.MAX_SKIPS:
                    raise UserError(
                        f"You skip {standing.MAX_SKIPS} days of {s.activity} already; pause it "
                        "instead, like !iwant pause until 2026-12-14."
                    )
                uow.save_standing(replace(s, skips=kept))
        cancelled = self._cancel_made(person, chosen, day, day + timedelta(days=1))
        what = "; ".join(standing.describe(s) for s in chosen)
        text = f"Skipping {msg.date_text(day)}: {what}."
        if cancelled:
            text += f" I cancelled the wish already made for that day ({', '.join(cancelled)})."
        return text

    def _cancel_made(
        self, person: Person, chosen: Sequence[Standing], first: date, until: date
    ) -> list[str]:
        """Cancel the live wishes ``chosen`` made for the days ``first`` to before ``until``
        (the others in a group are told, as for any cancel); their activities."""
        done = []
        for s in chosen:
            for request_id in self._made_live(s, first, min(until, s.next_day)):
                try:
                    self.requests.cancel(person, f"#{request_id}")
                except UserError:
                    continue  # it ended meanwhile
                done.append(s.activity)
        return done

    def pause(self, person: Person, args: str) -> str:
        """``!iwant pause until 2026-12-14`` or ``pause 2 weeks``: no standing wish makes a
        wish for a day before the first day back; wishes already made for them are cancelled."""
        check_person(person)
        _, _, today = self.identity.today(person)
        back = standing.parse_pause(args, today)
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id, claim=True)
            if not mine:
                raise UserError(msg.no_standing())
            for s in mine:
                uow.save_standing(replace(s, paused_until=back))
        cancelled = self._cancel_made(person, mine, today, back)
        count = "your standing wish" if len(mine) == 1 else f"all {len(mine)} standing wishes"
        text = (
            f"Paused {count} until {msg.date_text(back)} (the first day back); "
            "!iwant resume ends the pause sooner."
        )
        if cancelled:
            text += f" I cancelled the wishes already made ({', '.join(cancelled)})."
        return text

    def resume(self, person: Person) -> str:
        """End a pause of the person's standing wishes."""
        check_person(person)
        _, _, today = self.identity.today(person)
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id, claim=True)
            paused = [s for s in mine if s.paused_until is not None and s.paused_until > today]
            for s in paused:
                uow.save_standing(replace(s, paused_until=None))
        if not mine:
            return msg.no_standing()
        if not paused:
            return "Your standing wishes are not paused; see !iwant standing."
        first = min(paused, key=lambda s: s.next_day)
        return (
            f"Resumed: the next is {first.activity} on {msg.date_text(first.next_day)}; "
            "see !iwant standing."
        )

    def sweep(self, now: datetime | None = None, batch: int = STANDING_BATCH) -> int:
        """Make the days' wishes of standing wishes that are due (part of ``sweep``); how
        many standing wishes were looked at."""
        now = now or self.clock.now()
        if not self.storage.has_due_standing(now):
            return 0
        total = 0
        read, lead = self._read, self.settings.standing_lead
        for _ in range(10_000):  # bounded: each round moves every wish it sees to a later day
            observed: list[str] = []
            submit = self.requests.submitter(now, observed)
            with self.storage.transaction() as uow:
                seen = standing.sweep_step(
                    uow, now, batch, self.identity.zones.of, lead, read, submit
                )
            self.requests.observe_all(observed)
            total += seen
            if seen < batch:
                break
        return total

    def _read(self, wish: Standing, at: datetime, zone: ZoneInfo) -> Wish:
        return self.requests.read_wish(wish.person, wish.pool, wish.text, at, zone)[0]
