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


class SendFailed(Exception):
    """A platform refused or failed one send (``Engine.deliver``'s ``send`` raises it).

    ``str(err)`` is stored with the row as it is, so the caller makes it safe (no token, no
    password). ``permanent``: trying again cannot succeed (the person blocked the bot, the
    chat is gone); the row is given up at once. ``retry_after``: the platform said when to
    try again (a 429's ``retry_after``), in seconds; believed between 0 and 600."""

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
