"""Engine settings: ``plugins.cfg`` (plugins, activities, pools, limits) plus environment.

Environment variables (all optional): ``IWANT_DATABASE_URL``, ``IWANT_TIMEZONE``,
``IWANT_POLL_SECONDS``, ``IWANT_PLUGINS_CFG``. A setting that cannot be read stops the engine
at start with one line saying which setting and why (``SettingsError``).
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .calendars.provider import FetchLimits
from .pacing import Limit

ACTIVITY_NAME_MAX = 24
#: A key of plugins.cfg ``[pacing]``: a platform's budget, ``platform.budget``.
PACING_KEY = re.compile(r"[a-z0-9_-]+\.[a-z0-9_-]+")


class SettingsError(Exception):
    """A setting is wrong; the message names it."""


@dataclass(frozen=True)
class Activity:
    name: str
    length: timedelta
    max_size: int


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///iwant.db"
    default_timezone: str = "UTC"
    poll_seconds: float = 1.0
    storage: str = "sql"
    strategy: str = "overlap"  # the default strategy
    # Which strategy serves a pool ("slack:C1", "pool:office") or an activity ("lunch").
    strategy_rules: dict[str, str] = field(default_factory=dict)
    strategy_settings: dict[str, dict[str, str]] = field(default_factory=dict)  # by name
    activities: dict[str, Activity] = field(default_factory=dict)
    any_activity: Activity | None = None  # the ``*`` entry: any other word is an activity
    pools: dict[str, str] = field(default_factory=dict)  # room -> pool name
    horizon: timedelta = timedelta(days=7)
    max_open_requests: int = 5
    max_group_size: int = 20
    default_window: timedelta = timedelta(hours=1)
    pool_size: int = 5
    # How long a bot process has to hand an answer to its platform before any process
    # sends it as a direct message instead.
    reply_grace: timedelta = timedelta(seconds=30)
    # How long a delivery round holds the notifications it claimed: a process that dies
    # holding them leaves them to the others after this.
    delivery_lease: timedelta = timedelta(seconds=60)
    suggestions: bool = True  # near misses in the answer to a wish that waits
    # Finished requests, their results and delivered notifications are deleted after this.
    retention: timedelta = timedelta(days=90)
    max_standing: int = 5  # standing wishes ("every weekday") per person
    # A standing wish's wish for a day is made this long before that day begins (local).
    standing_lead: timedelta = timedelta(hours=12)
    # Delivery budgets plugins.cfg [pacing] sets, by "platform.budget" ("slack.channel"):
    # only those the file sets; a platform's adapter has the defaults of the others.
    pacing: dict[str, Limit] = field(default_factory=dict)
    # "Did you meet?" is asked this long after a group's meeting ends, and expires after.
    feedback_after: timedelta = timedelta(minutes=30)
    feedback_expiry: timedelta = timedelta(days=7)
    # [calendar]: linked calendars are read again this often, this far ahead; a person is
    # told once when theirs has failed for ``calendar_tell_after``.
    calendar_refresh: timedelta = timedelta(minutes=15)
    calendar_horizon: timedelta = timedelta(days=14)
    calendar_tell_after: timedelta = timedelta(hours=24)
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    # [calendar] invites: who gets a calendar invite with each match: "linked" (people who
    # linked a calendar), "all" or "off"; ``invite_domain``: the @domain of its UID.
    invites: str = "linked"
    invite_domain: str = "iwant.invalid"
    # The weekly digest (``!iwant digest on``): weekday (0 = Monday) and hour, in the
    # default time zone (``IWANT_TIMEZONE``).
    digest_weekday: int = 0
    digest_hour: int = 9

    def activity(self, name: str) -> Activity | None:
        return self.activities.get(name) or (
            Activity(name, self.any_activity.length, self.any_activity.max_size)
            if self.any_activity
            else None
        )

    def strategy_for(self, pool: str, activity: str) -> str:
        """A pool's rule first, then the activity's, then the default."""
        return self.strategy_rules.get(pool) or self.strategy_rules.get(activity) or self.strategy

    def pool_of(self, room: str) -> str:
        """The pool a room belongs to: a joined pool from config, else the room itself."""
        return self.pools.get(room, room)


DEFAULT_CFG = """
[engine]
storage = sql
strategy = overlap

[activities]
coffee = 15, 6
lunch = 45, 8
* = 30, 6
"""


def _int(section: str, key: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(
            f"plugins.cfg [{section}] {key} = {value!r}: not a whole number"
        ) from None
    if not low <= number <= high:
        raise SettingsError(f"plugins.cfg [{section}] {key} = {number}: must be {low}..{high}")
    return number


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _weekday(value: str) -> int:
    word = value.strip().lower()
    for number, name in enumerate(WEEKDAYS):
        if word in (name, name[:3]):
            return number
    raise SettingsError(
        f"plugins.cfg [digest] weekday = {value.strip()!r}: write a day of the week, "
        "like weekday = monday"
    )


def _activity(name: str, value: str) -> Activity:
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        raise SettingsError(
            f"plugins.cfg [activities] {name} = {value!r}: write 'minutes, max group size'"
        )
    minutes = _int("activities", name, parts[0], 1, 24 * 60)
    max_size = _int("activities", name, parts[1], 2, 1000)
    return Activity(name, timedelta(minutes=minutes), max_size)


def _yes_no(section: str, key: str, value: str) -> bool:
    word = value.strip().lower()
    if word in ("yes", "on", "true"):
        return True
    if word in ("no", "off", "false"):
        return False
    raise SettingsError(f"plugins.cfg [{section}] {key} = {value.strip()!r}: use yes or no")


def _calendar(
    section: Mapping[str, str],
) -> tuple[timedelta, timedelta, timedelta, FetchLimits]:
    """The ``[calendar]`` settings: refresh interval, horizon, tell after, fetch limits."""

    def number(key: str, default: int, low: int, high: int) -> int:
        return _int("calendar", key, section.get(key, str(default)), low, high)

    return (
        timedelta(minutes=number("refresh_minutes", 15, 1, 1440)),
        timedelta(days=number("horizon_days", 14, 1, 90)),
        timedelta(hours=number("tell_after_hours", 24, 1, 720)),
        FetchLimits(
            timeout_seconds=float(number("timeout_seconds", 10, 1, 120)),
            max_bytes=number("max_bytes", 5_000_000, 1000, 100_000_000),
            max_redirects=number("max_redirects", 3, 0, 10),
            allow_private_addresses=_yes_no(
                "calendar",
                "allow_private_addresses",
                section.get("allow_private_addresses", "no"),
            ),
        ),
    )


INVITES = ("linked", "all", "off")
_DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


def _invites(section: Mapping[str, str]) -> tuple[str, str]:
    """``[calendar] invites`` and ``invite_domain``."""
    invites = section.get("invites", "linked").strip().lower()
    if invites not in INVITES:
        raise SettingsError(f"plugins.cfg [calendar] invites = {invites!r}: use linked, all or off")
    domain = section.get("invite_domain", "iwant.invalid").strip()
    if not _DOMAIN.fullmatch(domain) or len(domain) > 200:
        raise SettingsError(
            f"plugins.cfg [calendar] invite_domain = {domain[:60]!r}: use a domain name, "
            "like iwant.example.com"
        )
    return invites, domain


def parse_cfg(text: str, environ: Mapping[str, str] | None = None) -> Settings:
    """Read plugins.cfg text and the environment into ``Settings``."""
    env = os.environ if environ is None else environ
    # "=" only: pool names ("slack:C1") contain colons.
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), delimiters=("=",))
    cfg.optionxform = str  # type: ignore[method-assign, assignment]  # keep room ids as written
    try:
        cfg.read_string(text)
    except configparser.Error as err:
        raise SettingsError(f"plugins.cfg cannot be read: {err}".splitlines()[0]) from None

    engine = cfg["engine"] if cfg.has_section("engine") else {}
    activities: dict[str, Activity] = {}
    any_activity = None
    for name, value in cfg["activities"].items() if cfg.has_section("activities") else []:
        if name == "*":
            any_activity = _activity(name, value)
            continue
        key = name.lower()
        if not key.isidentifier() or len(key) > ACTIVITY_NAME_MAX:
            raise SettingsError(f"plugins.cfg [activities] {name!r}: use one short word")
        activities[key] = _activity(key, value)

    pools: dict[str, str] = {}
    for pool, rooms in cfg["pools"].items() if cfg.has_section("pools") else []:
        for room in (r.strip() for r in rooms.split(",")):
            if room:
                pools[room] = f"pool:{pool}"

    limits = cfg["limits"] if cfg.has_section("limits") else {}
    feedback = cfg["feedback"] if cfg.has_section("feedback") else {}
    calendar_cfg = cfg["calendar"] if cfg.has_section("calendar") else {}
    refresh, calendar_horizon, tell_after, fetch_limits = _calendar(calendar_cfg)
    invites, invite_domain = _invites(calendar_cfg)
    digest = cfg["digest"] if cfg.has_section("digest") else {}
    for key in set(digest) - {"weekday", "hour"}:
        raise SettingsError(
            f"plugins.cfg [digest] {key}: unknown; write weekday = monday and hour = 9"
        )
    for key in set(feedback) - {"ask_after_minutes", "expire_after_days"}:
        raise SettingsError(
            f"plugins.cfg [feedback] {key}: unknown; write ask_after_minutes = 30 and "
            "expire_after_days = 7"
        )
    strategy = engine.get("strategy", "overlap").strip()
    suggestions = engine.get("suggestions", "on").strip().lower()
    if suggestions not in ("on", "off"):
        raise SettingsError(f"plugins.cfg [engine] suggestions = {suggestions!r}: use on or off")
    rules = {}
    for key, name in cfg["strategies"].items() if cfg.has_section("strategies") else []:
        rules[key if ":" in key else key.lower()] = name.strip()
    strategy_settings = {
        section.split(":", 1)[1].strip(): dict(cfg[section])
        for section in cfg.sections()
        if section.startswith("strategy:")
    }

    pacing: dict[str, Limit] = {}
    for key, value in cfg["pacing"].items() if cfg.has_section("pacing") else []:
        if not PACING_KEY.fullmatch(key):
            raise SettingsError(
                f"plugins.cfg [pacing] {key} = {value.strip()!r}: write it as platform.budget, "
                "like chat.room = 1/s burst 2"
            )
        try:
            pacing[key] = Limit.parse(value)
        except ValueError as err:
            raise SettingsError(f"plugins.cfg [pacing] {key} = {value.strip()!r}: {err}") from None

    tz = env.get("IWANT_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"IWANT_TIMEZONE={tz!r} is not a time zone (try Europe/Prague)"
        ) from None
    try:
        poll = float(env.get("IWANT_POLL_SECONDS", "").strip() or 1)
    except ValueError:
        raise SettingsError("IWANT_POLL_SECONDS must be a number of seconds") from None
    if not 0.05 <= poll <= 3600:
        raise SettingsError("IWANT_POLL_SECONDS must be between 0.05 and 3600")

    return Settings(
        database_url=env.get("IWANT_DATABASE_URL", "").strip() or "sqlite:///iwant.db",
        default_timezone=tz,
        poll_seconds=poll,
        storage=engine.get("storage", "sql").strip(),
        suggestions=suggestions == "on",
        strategy=strategy,
        strategy_rules=rules,
        strategy_settings=strategy_settings,
        activities=activities,
        any_activity=any_activity,
        pools=pools,
        pacing=pacing,
        horizon=timedelta(
            days=_int("limits", "horizon_days", limits.get("horizon_days", "7"), 1, 365)
        ),
        max_open_requests=_int(
            "limits", "max_open_requests", limits.get("max_open_requests", "5"), 1, 100
        ),
        max_group_size=_int(
            "limits", "max_group_size", limits.get("max_group_size", "20"), 2, 1000
        ),
        reply_grace=timedelta(
            seconds=_int(
                "limits", "reply_grace_seconds", limits.get("reply_grace_seconds", "30"), 2, 3600
            )
        ),
        delivery_lease=timedelta(
            seconds=_int(
                "limits",
                "delivery_lease_seconds",
                limits.get("delivery_lease_seconds", "60"),
                10,
                3600,
            )
        ),
        default_window=timedelta(
            minutes=_int(
                "limits",
                "default_window_minutes",
                limits.get("default_window_minutes", "60"),
                5,
                1440,
            )
        ),
        pool_size=_int(
            "limits", "database_pool_size", limits.get("database_pool_size", "5"), 1, 100
        ),
        max_standing=_int("limits", "max_standing", limits.get("max_standing", "5"), 1, 50),
        retention=timedelta(
            days=_int("limits", "retention_days", limits.get("retention_days", "90"), 1, 3650)
        ),
        feedback_after=timedelta(
            minutes=_int(
                "feedback", "ask_after_minutes", feedback.get("ask_after_minutes", "30"), 0, 10080
            )
        ),
        feedback_expiry=timedelta(
            days=_int(
                "feedback", "expire_after_days", feedback.get("expire_after_days", "7"), 1, 90
            )
        ),
        digest_weekday=_weekday(digest.get("weekday", "monday")),
        digest_hour=_int("digest", "hour", digest.get("hour", "9"), 0, 23),
        standing_lead=timedelta(
            hours=_int(
                "limits", "standing_lead_hours", limits.get("standing_lead_hours", "12"), 0, 48
            )
        ),
        calendar_refresh=refresh,
        calendar_horizon=calendar_horizon,
        calendar_tell_after=tell_after,
        fetch_limits=fetch_limits,
        invites=invites,
        invite_domain=invite_domain,
    )


def load(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from the file at ``path`` (or ``IWANT_PLUGINS_CFG``), else the built-in defaults."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("IWANT_PLUGINS_CFG")
    if chosen:
        try:
            text = Path(chosen).read_text(encoding="utf-8")
        except OSError as err:
            raise SettingsError(f"plugins.cfg cannot be read at {chosen}: {err.strerror}") from None
    else:
        text = DEFAULT_CFG
    return parse_cfg(text, env)
