"""Linked accounts (``!iwant link``): one person across platforms.

An account asks for a one-time code; the person's other account gives it back within
``CODE_LIFETIME``; from then on the second account belongs to the first one's person: one
time zone, one ignore list, one match history, one open-request cap, never grouped with
themself. Each request remembers the account that made it, and its answers and
notifications go there. A code is 8 characters of a 32-letter alphabet (40 bits), kept only
as its SHA-256 and compared in constant time; ``MAX_FAILURES`` wrong codes in
``FAILURE_WINDOW`` stop an account from trying.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from datetime import timedelta

from . import matching
from . import messages as msg
from .clock import Clock
from .errors import UserError
from .identity import Identity, check_person
from .model import Person, PersonInfo
from .storage.protocol import Storage

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed safely
CODE_LENGTH = 8
CODE_LIFETIME = timedelta(minutes=10)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(hours=1)

WRONG_CODE = (
    "That code is wrong or has expired; on your other account say !iwant link to get a new "
    "one, then !iwant link CODE here."
)
TOO_MANY = (
    f"That is {MAX_FAILURES} wrong codes within the hour; try again in an hour with a new "
    "code from !iwant link on your other account."
)
OWN_CODE = "That code is for your other account: say !iwant link CODE there."
ALREADY_LINKED = "This account is linked already; !iwant unlink first, then !iwant link CODE."


def new_code() -> str:
    """A fresh code, ``ABCD-EFGH``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def _normal(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def digest(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def match(code: str, stored: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The (hash, account) of ``code`` among the live codes, each compared in constant time."""
    wanted = digest(code)
    found = None
    for code_hash, account in stored:
        if hmac.compare_digest(code_hash, wanted):
            found = (code_hash, account)
    return found


def code_given(code: str) -> str:
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    return (
        f"Your link code is {code}. Within {minutes} minutes, on your other account, say "
        f"!iwant link {code} and the two accounts will be one person."
    )


def linked(name: str, platform: str) -> str:
    return (
        f"Linked: this account and {name} on {platform} are one person now: one time zone, "
        "one ignore list, one history, and never in a group with yourself. Wishes are "
        "answered where you make them. !iwant unlink undoes it."
    )


def unlinked(accounts: Sequence[str]) -> str:
    if not accounts:
        return "This account is not linked to another; !iwant link links one."
    if len(accounts) == 1:
        return f"Unlinked: {accounts[0]} is a person of its own again."
    return f"Unlinked: {', '.join(accounts)} are each a person of their own again."


class Links:
    """Linking accounts into one person, and unlinking them."""

    def __init__(self, storage: Storage, clock: Clock, identity: Identity) -> None:
        self.storage = storage
        self.clock = clock
        self.identity = identity

    def link(self, person: Person, code: str = "") -> msg.Note:
        """``!iwant link``: a one-time code for the person's other account; ``!iwant link
        CODE`` there makes the two accounts one person."""
        check_person(person)
        now = self.clock.now()
        given = code.strip()
        if not given:
            fresh = new_code()
            with self.storage.transaction() as uow:
                uow.add_person(PersonInfo(person.id, person.name[: matching.NAME_MAX]))
                uow.add_link_code(digest(fresh), person.id, now + CODE_LIFETIME)
            return msg.Note(person.id, code_given(fresh))
        with self.storage.transaction() as uow:
            uow.add_person(PersonInfo(person.id, person.name[: matching.NAME_MAX]))
            if uow.link_failures(person.id, now, FAILURE_WINDOW, add=False) >= (MAX_FAILURES):
                raise UserError(TOO_MANY)
            found = match(given, uow.link_codes(now))
            if found is None:
                uow.link_failures(person.id, now, FAILURE_WINDOW, add=True)
        if found is None:  # the failure is counted (its unit of work committed)
            raise UserError(WRONG_CODE)
        code_hash, issuer = found
        if issuer == person.id:
            raise UserError(OWN_CODE)
        theirs = self.storage.person(issuer)
        target = theirs.canonical if theirs and theirs.canonical else issuer
        if target == person.id:
            raise UserError(OWN_CODE)
        with self.storage.transaction() as uow:
            # Both people's locks, in one order: two accounts entering each other's codes at once
            # cannot both link (one would point to the other and back).
            for key in sorted({person.id, issuer, target}):
                uow.lock("person", key)
            if not uow.link(person.id, target):
                raise UserError(ALREADY_LINKED)
            uow.drop_link_code(code_hash)
        self.identity.forget_caches()
        name = theirs.name if theirs else issuer.split(":", 1)[-1]
        return msg.Note(person.id, linked(name, issuer.split(":", 1)[0]))

    def unlink(self, person: Person) -> str:
        """``!iwant unlink``, from either account: they are two people again."""
        check_person(person)
        with self.storage.transaction() as uow:
            done = uow.unlink(person.id)
        self.identity.forget_caches()
        return unlinked(done)
