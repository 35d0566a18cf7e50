"""iwant's engine: requests, matching, storage and notifications, with no chat library."""

from .clock import Clock, FixedClock, SystemClock
from .engine import Engine
from .errors import SendFailed, Unavailable, UserError
from .messages import Note
from .model import DeliveryReport, OpenRequest, OutboxItem, Person, PersonInfo
from .plugins import hookimpl
from .settings import Settings, SettingsError

__all__ = [
    "Clock",
    "DeliveryReport",
    "Engine",
    "FixedClock",
    "Note",
    "OpenRequest",
    "OutboxItem",
    "Person",
    "PersonInfo",
    "SendFailed",
    "Settings",
    "SettingsError",
    "SystemClock",
    "Unavailable",
    "UserError",
    "hookimpl",
]
