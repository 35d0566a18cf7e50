"""Every hook of the iwant engine. Plugins implement them with ``@iwant_engine.hookimpl``
(the marker is defined here, beside the hooks, so a storage or a strategy needs nothing else
of the engine's wiring).

Built-in storages and strategies are registered through these same hooks, exactly as a
third-party package would (see ``plugins.py``). A package is found through the Python entry
point group ``iwant`` and its storage or strategy is switched on by name in ``plugins.cfg``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from .model import Candidate, Decision, MatchContext, Nearby, OpenGroup, Suggestion, Wish

hookspec = pluggy.HookspecMarker("iwant")
hookimpl = pluggy.HookimplMarker("iwant")

#: A strategy's decide function (see ``iwant_strategies``).
Decide = Callable[[Wish, Sequence[Candidate], Sequence[OpenGroup], MatchContext], Decision]
#: What ``iwant_strategies`` maps a name to: called once at start with the strategy's
#: settings from ``plugins.cfg`` (section ``[strategy:<name>]``); returns the decide function.
#: It raises ``ValueError`` with a one-line reason for a bad setting, which stops the bot at
#: start.
StrategyFactory = Callable[[Mapping[str, str]], Decide]


@hookspec
def iwant_storages() -> Mapping[str, Any]:
    """Name the storages this plugin provides.

    Called once when an engine is built; every implementation is called and the mappings are
    merged (two plugins giving the same name is an error at start). Returns a mapping from
    the name used in ``plugins.cfg`` (``[engine] storage = sql``) to a factory called as
    ``factory(url, pool_size=..., default_timezone=...)`` that returns a
    ``storage.protocol.Storage``: the narrow, typed protocol of data operations (units of
    work, locks, reads, ``apply`` of a domain step's ``Changes``, the outbox) documented in
    ``iwant_engine/storage/protocol.py``. A storage holds no domain rule and no text people
    read. Built in: ``sql`` (SQLite, PostgreSQL) and ``memory``; a storage must pass the
    storage conformance suite (``tests/engine/test_storage_conformance.py``).
    """
    raise NotImplementedError


@hookspec
def iwant_strategies() -> Mapping[str, StrategyFactory]:
    """Name the matching strategies this plugin provides.

    Called once when an engine is built; every implementation is called and the mappings are
    merged (a duplicate name is an error at start). Returns a mapping from a strategy name
    (``[engine] strategy = overlap`` in ``plugins.cfg``) to a ``StrategyFactory``.

    The decide function it makes is called once per new request, inside the storage's
    transaction for that request's (pool, activity), as
    ``decide(wish, candidates, groups, ctx)`` and returns one of ``model.Join(result_id)``,
    ``model.Form(request_ids, start)`` or ``model.Wait()``:

    - ``wish``: the new request (window ``earliest``..``latest``, ``length``, ``deadline``,
      ``max_size``), already stored and waiting.
    - ``candidates``: other people's waiting requests in the same pool and activity whose
      window overlaps the wish by at least the activity's length and whose deadline has not
      passed, ordered by window end, at most 200.
    - ``groups``: formed groups of that pool and activity whose fixed meeting lies inside the
      wish's window, has not started, and has room, ordered by start.
    - ``ctx``: ``now``, the activity ``length``, this strategy's settings, ``apart`` (ignore
      pairs) and the match history with the people in ``candidates`` and ``groups``, read
      from the storage only when the strategy looks at it:

      - ``ctx.history``: person id -> the formed groups the wish's person shared with them,
        newest first, each a ``model.PastMeeting(start, outcome)``. ``outcome`` comes from the
        answers to "Did you meet?" (``iwant_engine/outcomes.py``): ``Outcome.NOT_MET`` when
        one of the two said nobody met or anyone said one of them did not come,
        ``Outcome.MET`` when an answer says the group met, ``Outcome.UNKNOWN`` when nobody
        answered. People never grouped with the wish's person are absent.
      - ``ctx.last_met``: person id -> the start of the latest of those groups whose outcome
        is not ``NOT_MET`` (a no-show is not a meeting); what ``fresh-faces`` reads.

      The strategy kit builds both: ``match_context(history={"bob": [("2026-11-24 10:00",
      "not met")]})`` (``iwant_engine.testing_builders``).

    A decide function may carry an attribute ``min_group_size`` (an int, default 2): the
    smallest group it ever forms (the engine stores it on each request it serves, so the
    invariants and the deadline message, "fewer than 3 people could make it", know it); and
    ``max_group_size``: the largest group it forms at once (2 for one that forms pairs and lets
    them grow by joins), which the strategy kit's liveness check respects.

    The function must be pure: no I/O, no clock, no randomness that is not seeded from its
    inputs; the same inputs give the same decision, whatever the order among candidates of
    the same window end (or groups of the same start): break ties on what it is handed (the
    request id, say), not on where it stands. The engine checks every decision (each
    member's window covers the meeting, nobody's deadline has passed, no group above the
    smallest ``max_size`` of its members, a formed group never moves) and refuses a decision
    that breaks one, leaving the request waiting and logging an error.
    """
    raise NotImplementedError


@hookspec
def iwant_suggestions(wish: Wish, nearby: Nearby, ctx: MatchContext) -> Sequence[Suggestion]:
    """Suggest near misses for a wish that waits: ways to meet that a small change would make.

    Called when a new wish waits and when a waiting wish ends with nobody (``[engine]
    suggestions = on``, the default); every implementation is called and the engine merges
    their suggestions, drops those whose meeting has started or that repeat another's
    meeting, and offers at most two, nearest (``Suggestion.distance``) first, each with the
    command (and a button) that turns it into a match.

    - ``wish``: the waiting wish (its window, ``length``, ``max_size``, ``min_size``).
    - ``nearby``: other people's waiting wishes and formed groups of the same pool and
      activity within ``nearby.margin`` (60 minutes) of the window; nobody kept apart from the
      wish's person by an ignore is in it (see ``model.Nearby``).
    - ``ctx``: ``now`` and the activity ``length`` (no settings, no match history).

    Returns a sequence of ``model.Suggestion``: meetings that start at ``ctx.now`` or later,
    lie inside the windows of the wishes counted (or are the group's meeting), and would form
    or join a group of at most every member's ``max``; a few at most (the engine keeps two),
    empty for none. The function must be pure and fast: it runs inside the submission's
    transaction, with no I/O and no clock.
    Built in: ``nearest-miss`` (``iwant_engine/suggestions.py``).
    """
    raise NotImplementedError


@hookspec
def iwant_calendars() -> Mapping[str, Any]:
    """Name the calendar providers this plugin provides.

    Called when an engine is built (two plugins giving the same name is an error at start)
    and again whenever a calendar is linked or refreshed, so a provider registered on a
    running engine's plugin manager counts at once; every implementation is called and the
    mappings are merged. Returns a mapping from a provider's name (``ics``, ``caldav``; shown
    to the person and stored beside the address) to a ``calendars.provider.CalendarProvider``:
    ``accepts(address)`` says from the address alone, without I/O, whether it reads it, and
    ``busy(address, start, end, limits, floating)`` returns the merged, sorted busy intervals
    of ``[start, end)`` in UTC, honouring ``FetchLimits`` (time, size, redirects, private
    addresses refused unless allowed) and reading zone-less times in ``floating``, the
    person's zone. The engine gives an address to the first provider, by name, that accepts it.

    A provider is called outside any unit of work, from the background refresh (never on a
    command's path except the check when a calendar is linked), possibly from several
    threads at once, so it must be thread-safe (the built-ins hold no state between calls).
    Anything that goes wrong is raised as ``calendars.provider.CalendarError`` with one line
    a person may read, which never contains the address: the address is a password.

    The engine cuts the busy parts out of a wish's window and keeps the earliest free piece
    that can still hold the activity's length: strategies see only that trimmed window, and
    nobody sees another person's calendar, only its effect. Built in: ``ics``
    (``iwant_engine/calendars/feed.py``) and ``caldav``
    (``iwant_engine/calendars/caldav_provider.py``).
    """
    raise NotImplementedError


#: The events ``iwant_observe`` reports.
OBSERVED = ("matched", "standing_made", "calendar_ok", "calendar_failed")


@hookspec
def iwant_observe(event: str) -> None:
    """Count something that happened, for an operator's metrics (a chat plugin registers an
    implementation on its engine's plugin manager to count them).

    Called by the engine once per occurrence, when the unit of work that did it is done
    (a standing wish's day: inside it; a calendar refresh: after it, off any command's
    path); every implementation is called. ``event`` is one of
    ``OBSERVED``:

    - ``matched``: a new wish met someone at once (formed a group or joined one), whether
      typed or made from a standing wish;
    - ``standing_made``: a standing wish's day became a wish (``iwant_engine.standing``);
    - ``calendar_ok`` / ``calendar_failed``: a background refresh of one linked calendar
      read it, or failed to (``iwant_engine.calendar_service``).

    Returns nothing (a return value is ignored). An implementation must be fast and never
    raise: it runs on the path of a command.
    """
