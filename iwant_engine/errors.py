"""Errors whose text is shown to a person as it is: one clear line with a working example."""


class UserError(Exception):
    """Bad input or a refused action; ``str(err)`` is the whole reply."""


class Unavailable(Exception):
    """The database cannot be reached; nothing was saved."""

    message = "iwant is temporarily unavailable; nothing was saved, please try again in a minute."

    def __str__(self) -> str:
        return self.message


class DuplicateEvent(Exception):
    """A request with this platform event id is stored already; nothing new was stored."""


class StrategyError(AssertionError):
    """A strategy's decision broke an invariant (raised only by a strict engine, the kit's)."""
