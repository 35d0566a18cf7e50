"""The adapter kit (``iwant_platform.kit``) run whole on Slack: a real errbot process with
the iwant plugin on the IWantSlack backend, against the Slack stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from iwant_platform.kit import SCENARIOS, run_kit
from slack_kit_driver import DAVE, SlackKitDriver


@pytest.fixture
def slack(tmp_path: Path) -> Iterator[SlackKitDriver]:
    driver = SlackKitDriver(tmp_path)
    try:
        yield driver
    finally:
        driver.close()


def test_slack_passes_the_whole_adapter_kit(slack: SlackKitDriver) -> None:
    report = run_kit(slack)
    print(report.text())
    assert report.ok, report.text()
    # Slack can force everything the kit asks for: no scenario may go uncovered.
    missing = {s.__name__ for s in SCENARIOS} - set(report.covered())
    assert not missing, f"not covered on Slack: {sorted(missing)}\n{report.text()}"
    # The hostile name reached the person it was shown to (Slack's user_change event), so
    # hostile_display_names judged it, not the name cached from before.
    told = [s.text for s in slack.shown_to(DAVE) if "joins you for bowling" in s.text]
    assert told and all("Eve" in text for text in told), told
