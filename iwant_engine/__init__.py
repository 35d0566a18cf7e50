"""iwant's engine: requests, matching, storage and notifications, with no chat library."""

from .clock import Clock, FixedClock, SystemClock
from .engine import DeliveryReport, Engine, Person
from .errors import Unavailable, UserError
from .messages import Note
from .plugins import hookimpl
from .settings import Settings, SettingsError

__all__ = [
    "Clock",
    "DeliveryReport",
    "Engine",
    "FixedClock",
    "Note",
    "Person",
    "Settings",
    "SettingsError",
    "SystemClock",
    "Unavailable",
    "UserError",
    "hookimpl",
]
