"""The adapter kit on Telegram: every scripted conversation of ``iwant_platform.kit``, with
a real errbot process (the iwant plugin on the IWantTelegram backend) and people talking to
it through the Bot API stand-in."""

from __future__ import annotations

from pathlib import Path

from iwant_platform.kit import SCENARIOS, run_kit
from telegram_kit_driver import TelegramKitDriver
from telegram_standin import BotApiStandin


def test_the_adapter_kit_passes_on_telegram(standin: BotApiStandin, tmp_path: Path) -> None:
    driver = TelegramKitDriver(standin, tmp_path / "kit")
    try:
        report = run_kit(driver)
    finally:
        driver.close()
    print(report.text())
    log = f"\n--- errbot's log, its end ---\n{driver.log_tail()}"
    assert report.ok, report.text() + log
    # The stand-in can force everything: nothing is left uncovered on Telegram.
    missing = [s.__name__ for s in SCENARIOS if s.__name__ not in report.covered()]
    assert not missing, f"not covered: {missing}\n{report.text()}{log}"
