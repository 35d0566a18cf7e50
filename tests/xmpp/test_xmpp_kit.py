"""The adapter kit on XMPP: every scripted conversation of ``iwant_platform.kit`` with a
real errbot process (the iwant plugin on the IWantXMPP backend) and people talking to it
through a real Prosody."""

from __future__ import annotations

from pathlib import Path

from iwant_platform.kit import REQUIRED, SCENARIOS, run_kit
from xmpp_harness import People, Prosody
from xmpp_kit_driver import XMPPKitDriver

#: What Prosody cannot be made to do (the kit reports these as not covered, with why).
CANNOT = {"rate_limit_pauses_and_loses_nothing", "hostile_display_names"}


def test_the_adapter_kit_passes_on_xmpp(prosody: Prosody, people: People, tmp_path: Path) -> None:
    driver = XMPPKitDriver(prosody, people, tmp_path / "kit")
    try:
        report = run_kit(driver)
    finally:
        driver.close()
    print(report.text())
    log = f"\n--- errbot's log, its end ---\n{driver.log_tail()}"
    assert report.ok, report.text() + log
    assert set(report.covered()) >= REQUIRED, report.text() + log
    missing = {s.__name__ for s in SCENARIOS} - set(report.covered())
    assert missing == CANNOT, f"not covered: {sorted(missing)}\n{report.text()}{log}"
