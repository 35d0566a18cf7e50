""" "Did you meet?": asked privately of each member of a formed group once its meeting is
over, answered with ``!iwant met``; answers tell the strategies who really met
(``outcomes.py``).

Grammar (the group's number is in the question):

- ``!iwant met #12 all``: we all met;
- ``!iwant met #12 none``: we didn't meet;
- ``!iwant met #12 without Bob, Carol``: some of us met, these did not come;
- ``!iwant met #12 some``: asks who did not come, with a button per name;
- ``!iwant feedback off`` / ``on``: no more questions / questions again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from . import matching
from . import messages as msg
from .clock import Clock
from .errors import UserError
from .identity import Identity, check_person
from .model import Answer, Changes, NewOutbox, Person, PersonInfo, Question, Status, StoredGroup
from .settings import Settings
from .storage.protocol import Storage

#: Groups asked about in one unit of work of the sweep.
ASK_BATCH = 100
EXAMPLE = "!iwant met #{group} all (or: none, or without NAME)"


def _plain(name: str) -> str:
    return name.strip().lstrip("@").casefold()


def question_text(group: StoredGroup, others: Sequence[str], zone: ZoneInfo) -> str:
    r = group.result
    assert r.start is not None and r.end is not None, "a formed group has a meeting"
    return (
        f"Did you meet? {r.activity} {msg.slot(r.start, r.end, zone)} with "
        f"{msg.and_list(others)} (group #{r.id}). Only iwant sees your answer; it helps match "
        "you with people you haven't really met yet."
    )


def question_buttons(result_id: int, size: int) -> list[dict[str, str]]:
    command = f"iwant met #{result_id}"
    buttons = [{"label": "We all met", "command": f"{command} all"}]
    if size > 2:
        buttons.append({"label": "Some of us met", "command": f"{command} some"})
    buttons.append({"label": "We didn't meet", "command": f"{command} none"})
    buttons.append({"label": "Don't ask me again", "command": "iwant feedback off"})
    return buttons


class Feedback:
    """Asks "Did you meet?" after each formed group's meeting and keeps the answers."""

    def __init__(
        self, storage: Storage, clock: Clock, settings: Settings, identity: Identity
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.identity = identity

    # -- the sweep's part ---------------------------------------------------------------------

    def ask(self, now: datetime | None = None, batch: int = ASK_BATCH) -> int:
        """Ask the members still in each group whose meeting ended ``[feedback]
        ask_after_minutes`` ago (and not so long that the question would have expired), each
        once, unless they turned questions off; how many were asked. Safe with several
        processes: each group is claimed, then marked asked in the same unit of work."""
        now = now or self.clock.now()
        ended = now - self.settings.feedback_after
        since = ended - self.settings.feedback_expiry
        if not self.storage.has_to_ask(ended, since):
            return 0
        asked = 0
        while True:
            with self.storage.transaction() as uow:
                groups = uow.to_ask(ended, since, batch)
                if not groups:
                    return asked
                ids = {m.person for g in groups for m in g.members}
                people = uow.people(ids | {m.recipient for g in groups for m in g.members})
                questions: list[Question] = []
                changes = Changes()
                for g in groups:
                    still = [m for m in g.members if m.status is Status.DONE]
                    if len(still) < 2:
                        continue
                    for m in still:
                        info = people.get(m.person)
                        if info is not None and info.feedback_off:
                            continue
                        others = [_name(people, o.person) for o in still if o.person != m.person]
                        zone = self.identity.zones.of(people.get(m.recipient) or info)
                        questions.append(
                            Question(
                                g.result.id, m.person, now, now + self.settings.feedback_expiry
                            )
                        )
                        changes.outbox.append(
                            NewOutbox(
                                m.recipient,
                                question_text(g, others, zone),
                                question_buttons(g.result.id, len(still)),
                                topic=f"met:{g.result.id}",
                            )
                        )
                uow.add_questions(questions)
                uow.mark_asked([g.result.id for g in groups], now)
                if changes:
                    uow.apply(changes, now)
                asked += len(questions)
            if len(groups) < batch:
                return asked

    # -- commands -----------------------------------------------------------------------------

    def answer(self, person: Person, args: str) -> msg.Note:
        """``!iwant met #12 all|none|some|without NAME[, NAME]``."""
        check_person(person)
        words = args.split()
        if not words:
            raise UserError("Say which group and how it went: " + EXAMPLE.format(group=12))
        number = words[0].lstrip("#")
        if not number.isdigit() or len(number) > 9:
            raise UserError(
                f"'{msg.quote(words[0], 12)}' is not a group number; try "
                + EXAMPLE.format(group=12)
            )
        group_id = int(number)
        example = EXAMPLE.format(group=group_id)
        how = words[1].lower() if len(words) > 1 else ""
        rest = " ".join(words[2:])
        if how not in ("all", "none", "some", "without") or (how != "without" and rest):
            raise UserError(f"Say how it went: {example}.")
        if how == "without" and not rest:
            raise UserError(f"Say who didn't come: !iwant met #{group_id} without NAME.")
        me = self.identity.as_person(person).id
        now = self.clock.now()
        with self.storage.transaction() as uow:
            question = uow.question(group_id, me)
            if question is None:
                raise UserError(
                    f"I didn't ask you about group #{group_id}; the number is in my question."
                )
            if question.expires_at <= now:
                raise UserError(f"The question about group #{group_id} has expired; thanks anyway.")
            group = uow.group(group_id)
            others = [m.person for m in group.members if m.person != me] if group else []
            names = uow.people(others)
            if how == "some":
                buttons = [
                    {
                        "label": f"{_name(names, o)} didn't come",
                        "command": f"iwant met #{group_id} without {_name(names, o)}",
                    }
                    for o in others
                ]
                return msg.Note(
                    person.id,
                    'Who didn\'t come? Choose one (several: their names after "without", '
                    "separated by commas).",
                    buttons,
                    queued=False,
                )
            absent: tuple[str, ...] = ()
            if how == "without":
                absent = _absentees(rest, {o: _name(names, o) for o in others}, group_id)
            answer = {"all": Answer.ALL, "none": Answer.NONE}.get(how, Answer.SOME)
            uow.save_answer(replace(question, answer=answer, absent=absent, answered_at=now))
        if answer is Answer.ALL:
            text = "Thanks! Glad you all met."
        elif answer is Answer.NONE:
            text = "Thanks. I won't count it as a meeting when I match you again."
        else:
            text = (
                f"Thanks. Noted that {msg.and_list([_name(names, a) for a in absent])} didn't come."
            )
        return msg.Note(person.id, text, queued=False)

    def set_asking(self, person: Person, args: str) -> str:
        """``!iwant feedback off|on``; without an argument, whether questions are on."""
        check_person(person)
        word = args.strip().lower()
        me = self.identity.as_person(person).id
        if word not in ("on", "off"):
            if word:
                raise UserError(
                    "Say !iwant feedback off (no more questions) or !iwant feedback on."
                )
            info = self.storage.person(me)
            state = "off" if info is not None and info.feedback_off else "on"
            return f'"Did you meet?" questions are {state} for you (!iwant feedback on|off).'
        with self.storage.transaction() as uow:
            uow.add_person(PersonInfo(me, person.name[: matching.NAME_MAX]))
            uow.set_feedback(me, word == "off")
        if word == "off":
            return "I won't ask you whether you met any more. !iwant feedback on asks again."
        return "I'll ask you whether you met after each group's meeting."


def _name(people: dict[str, PersonInfo], person: str) -> str:
    info = people.get(person)
    return info.name if info is not None else person.split(":", 1)[-1]


def _absentees(text: str, names: dict[str, str], group_id: int) -> tuple[str, ...]:
    """The ids of the group's members named in ``text`` (names separated by commas, or single
    words), matched without case or a leading ``@``."""
    by_name: dict[str, str] = {}
    for who, name in names.items():
        by_name.setdefault(_plain(name), who)
        by_name.setdefault(_plain(who.split(":", 1)[-1]), who)
    found: list[str] = []
    for piece in (p for p in text.replace(" and ", ",").split(",") if p.strip()):
        words = [piece] if _plain(piece) in by_name else piece.split()
        for word in words:
            named = by_name.get(_plain(word))
            if named is None:
                shown = ", ".join(sorted(names.values())) or "nobody else"
                raise UserError(
                    f"'{msg.quote(word, 30)}' was not in group #{group_id} (it had {shown}); "
                    f"try !iwant met #{group_id} without {next(iter(names.values()), 'NAME')}."
                )
            if named not in found:
                found.append(named)
    return tuple(found)
