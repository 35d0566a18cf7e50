"""``[calendar]`` in plugins.cfg: defaults, the fetch limits, and one line per bad value."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from iwant_engine import settings
from iwant_engine.calendars.provider import FetchLimits


def test_defaults_without_a_calendar_section():
    read = settings.parse_cfg(settings.DEFAULT_CFG, {})
    assert read.calendar_refresh == timedelta(minutes=15)
    assert read.calendar_horizon == timedelta(days=14)
    assert read.calendar_tell_after == timedelta(hours=24)
    assert read.fetch_limits == FetchLimits(10.0, 5_000_000, 3, False)


def test_the_repository_plugins_cfg_says_the_defaults():
    read = settings.load(Path(__file__).resolve().parents[2] / "plugins.cfg", {})
    assert read.fetch_limits == FetchLimits()
    assert read.calendar_refresh == timedelta(minutes=15)


def test_every_value_is_read():
    read = settings.parse_cfg(
        "[calendar]\nrefresh_minutes = 5\nhorizon_days = 3\ntimeout_seconds = 2\n"
        "max_bytes = 2000\nmax_redirects = 0\nallow_private_addresses = yes\n"
        "tell_after_hours = 2\n",
        {},
    )
    assert read.calendar_refresh == timedelta(minutes=5)
    assert read.calendar_horizon == timedelta(days=3)
    assert read.calendar_tell_after == timedelta(hours=2)
    assert read.fetch_limits == FetchLimits(2.0, 2000, 0, True)


@pytest.mark.parametrize(
    "line, says",
    [
        ("refresh_minutes = soon", "refresh_minutes = 'soon': not a whole number"),
        ("horizon_days = 0", "horizon_days = 0: must be 1..90"),
        ("timeout_seconds = 600", "timeout_seconds = 600: must be 1..120"),
        ("max_bytes = 10", "max_bytes = 10: must be 1000..100000000"),
        ("max_redirects = 11", "max_redirects = 11: must be 0..10"),
        ("allow_private_addresses = no way", "allow_private_addresses = 'no way': use yes or no"),
        ("tell_after_hours = -1", "tell_after_hours = -1: must be 1..720"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_clear_line(line, says):
    with pytest.raises(settings.SettingsError) as err:
        settings.parse_cfg(f"[calendar]\n{line}\n", {})
    assert str(err.value) == f"plugins.cfg [calendar] {says}"
