"""Delivery of the outbox, at the pace the platforms allow, and the durability of answers:
a command's answer acknowledged once handed to the platform, or sent again as a direct
message when its process died first."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from . import matching, pacing
from . import messages as msg
from .clock import Clock
from .errors import SendFailed
from .invites import CalendarPeople, InvitePolicy
from .model import LIVE, Changes, DeliveryReport, NewOutbox, OutboxItem
from .pacing import Pacer, Scope
from .settings import Settings
from .storage.protocol import Storage

log = logging.getLogger(__name__)
#: A notification is given up after this many failed sends; retries back off exponentially.
MAX_ATTEMPTS = 8


class Delivery:
    """Sends due outbox rows with a platform's send function, paced by a ``Pacer`` whose
    budgets every process of a bot shares through the storage."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        zones: matching.Zones,
        invites: InvitePolicy | None = None,
    ) -> None:
        """``zones``: a stored person's zone, for the answers sent again; ``invites``: who
        receives the calendar invites of a row (one of its own when not given)."""
        self.storage = storage
        self.invites = invites or InvitePolicy(settings, CalendarPeople(storage))
        self.clock = clock
        self.settings = settings
        self.zones = zones
        #: Reserves send slots in the storage's shared budgets (a test may swap it).
        self.pacer = Pacer(storage.pace)
        #: Set when the process stops: a delivery round gives back what it has not sent.
        self.stopping = threading.Event()

    def deliver(
        self,
        platform: str,
        send: Callable[[OutboxItem], None],
        limit: int = 50,
        scopes: Callable[[OutboxItem], Sequence[Scope]] | None = None,
    ) -> DeliveryReport:
        """Send due outbox rows of ``platform`` with ``send``; ack, retry or give up each.

        A failed send is retried after 2, 4, 8 … seconds (at most 10 minutes), or after the
        ``retry_after`` of a ``SendFailed`` that says one, and given up after
        ``MAX_ATTEMPTS`` attempts, or at once for a ``SendFailed`` that is ``permanent``.
        The row keeps the text of a ``SendFailed`` (its raiser made it safe); of any other
        exception, only its type's name (its message may carry a secret).

        With ``scopes`` (the budgets a row spends, as the platform's adapter says), each send
        waits for a slot that every process of the bot leaves free (``pacing``), but never
        long: a row whose slot is more than ``pacing.PROMPT`` away (its chat is busy) is set
        aside while the others go, tried once more after them, and then given back until its
        slot (``deferred``; its attempt not counted). So one busy chat never holds up the
        rest; a person's later rows wait behind one set aside, so each reads their notes in
        the order they were written; and rows are never held near the end of their lease."""
        delivered = retried = deferred = 0
        given_up: list[OutboxItem] = []
        claimed_at = self.clock.now()
        if self.stopping.is_set():
            return DeliveryReport()
        held_for = self.settings.delivery_lease
        claimed = self.storage.claim_outbox(platform, claimed_at, limit, held_for)
        lease = claimed_at + held_for  # a row given back or failed only while still ours
        # Past half the lease another process may claim these rows again: give back the rest.
        hold_until = self.pacer.clock() + held_for.total_seconds() / 2
        rows = [(item, scopes(item) if scopes is not None else ()) for item in claimed]
        for last in (False, True):
            busy: list[tuple[OutboxItem, Sequence[Scope]]] = []
            # People with a row set aside or given back: their later rows wait too, so each
            # person reads their notes in the order they were written.
            held: set[str] = set()
            for item, paced in rows:
                if self.stopping.is_set():  # the process stops: the row is due again at once
                    self.storage.release(item.id, self.clock.now(), lease)
                    deferred += 1
                    continue
                late = self.pacer.clock() > hold_until
                if late or item.recipient in held:
                    if last or late:
                        self.storage.release(item.id, self.clock.now(), lease)
                        deferred += 1
                    else:
                        busy.append((item, paced))
                    held.add(item.recipient)
                    continue
                if paced:
                    slot, reserved = self.pacer.reserve(paced, pacing.PROMPT)
                    if not reserved and not last:
                        busy.append((item, paced))  # its chat is busy: after the others
                        held.add(item.recipient)
                        continue
                    if not reserved or slot > hold_until:
                        later = timedelta(seconds=max(slot - self.pacer.clock(), 0.0))
                        self.storage.release(item.id, self.clock.now() + later, lease)
                        deferred += 1
                        held.add(item.recipient)
                        continue
                    self.pacer.wait_for(slot)
                try:
                    # A row's invites go only to those who receive invites (``invites``).
                    send(self.invites.item(item))
                except Exception as err:  # the platform failed; the row stays until it succeeds
                    failed = err if isinstance(err, SendFailed) else None
                    permanent = (failed is not None and failed.permanent) or (
                        item.attempts >= MAX_ATTEMPTS
                    )
                    log.warning(
                        "sending outbox row %s failed (%s): %s",
                        item.id,
                        "permanent" if permanent else "will retry",
                        type(err).__name__,
                    )
                    now = self.clock.now()
                    # A platform that said how long to wait (a 429's retry_after) is believed.
                    wait = failed.retry_after if failed is not None else None
                    if wait is None or not 0 < wait <= 600:
                        wait = min(2**item.attempts, 600)
                    retry_at = None if permanent else now + timedelta(seconds=wait)
                    error = str(err) if failed is not None else type(err).__name__
                    self.storage.fail(item.id, now, error, retry_at, lease)
                    if permanent:
                        given_up.append(item)
                    else:
                        retried += 1
                    continue
                self.storage.ack(item.id, self.clock.now())
                delivered += 1
            rows = busy
        return DeliveryReport(delivered, retried, given_up, deferred)

    def pause(self, scopes: Sequence[Scope], seconds: float) -> None:
        """The platform answered 429: nothing more in these scopes for ``seconds``, in every
        process."""
        self.pacer.pause(scopes, seconds)

    def forget_idle_budgets(self) -> int:
        """Drop the budgets untouched for ``pacing.KEEP_SECONDS``: they have refilled, as
        good as never stored (retention's job); how many."""
        return self.storage.forget_paces(self.pacer.clock() - pacing.KEEP_SECONDS)

    # -- answers -----------------------------------------------------------------------------

    def replied(self, request_ids: Sequence[int]) -> None:
        """These requests' answers were handed to the platform (``Requests.submit``'s
        ``durable_reply``)."""
        if request_ids:
            self.storage.mark_replied(request_ids, self.clock.now())

    def answer_again(self, platform: str) -> int:
        """Queue, as direct messages, the answers to ``platform``'s people never acknowledged
        within the grace period (their bot process died between its commit and its reply);
        how many. A poller's job, like ``sweep``."""
        now = self.clock.now()
        before = now - self.settings.reply_grace
        if not self.storage.has_unreplied(platform, before):
            return 0
        with self.storage.transaction() as uow:
            changes = Changes()
            for request in uow.unreplied(platform, before, 50):
                changes.replied.append(request.id)
                if request.status not in LIVE:
                    continue  # it has ended, and its person was told so
                listed = matching.as_listed(uow, request)
                zone = self.zones.of(uow.people([request.person]).get(request.person))
                body = msg.answer_again(msg.request_line(listed, zone))
                buttons = msg.cancel_button(request.id)
                changes.outbox.append(NewOutbox(request.recipient, body, buttons, request.origin))
            uow.apply(changes, now)
        return len(changes.outbox)
