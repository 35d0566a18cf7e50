"""The example third-party strategy: installed with pip, found by its entry point, checked
with the kit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "iwant-latest-start"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """An environment in which the example package is pip-installed (into a target dir)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {**os.environ, "PYTHONPATH": str(target)}


def test_discovered_through_its_entry_point(installed):
    out = subprocess.run(
        [sys.executable, "-m", "iwant_engine", "plugins", "--config", str(REPO / "plugins.cfg")],
        env=installed,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "latest-start from latest-start" in out
    assert "\n  latest-start 0.1.0: iwant_strategies\n" in out, "its version and hooks"
    assert "overlap from iwant_engine.strategies.overlap  (active)" in out


def test_passes_the_kit(installed):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        env=installed,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=EXAMPLE,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_switched_on_by_name_in_plugins_cfg(installed, tmp_path):
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[engine]\nstrategy = latest-start\n[activities]\ncoffee = 15, 6\n")
    script = (
        "from iwant_engine import Engine, FixedClock, Person, settings\n"
        "from datetime import datetime, UTC\n"
        "import dataclasses, sys\n"
        f"s = settings.load({str(cfg)!r}, environ={{}})\n"
        f"s = dataclasses.replace(s, database_url='sqlite:///{tmp_path / 'x.db'}')\n"
        "e = Engine(s, FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC)))\n"
        "e.submit(Person('text:@a', 'A'), 'coffee 9:00-12:00')\n"
        "print(e.submit(Person('text:@b', 'B'), 'coffee 9:00-11:00').body)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=installed,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert out.strip() == "Matched! You meet A for coffee at 10:45–11:00 (Tue 1 Dec)."
