"""Stop the bot with requests waiting and a notification owed; a restart loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iwant_engine import Engine, Person, settings

REPO = Path(__file__).resolve().parents[2]
ERRBOT = Path(sys.executable).with_name("errbot")


def run_bot(data_dir: Path, *lines: str) -> str:
    """The local bot (Text backend, SQLite in data_dir) fed ``lines``; its console output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IWANT_")}
    env.update(IWANT_DATA_DIR=str(data_dir), IWANT_POLL_SECONDS="3600", NO_COLOR="1")
    done = subprocess.run(
        [str(ERRBOT), "-c", str(REPO / "config.py"), "-T"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_restart_keeps_waiting_requests_and_delivers_owed_notes_once(tmp_path):
    out = run_bot(tmp_path, "!iwant coffee for 2h")
    assert "Waiting for coffee company" in out

    # Another process commits a match for the local user and dies before delivering it.
    cfg = settings.load(REPO / "plugins.cfg", environ={})
    from dataclasses import replace

    crashed = Engine(replace(cfg, database_url=f"sqlite:///{tmp_path / 'iwant.db'}"))
    crashed.submit(Person("text:@localuser", "localuser"), "tea for 2h")
    assert crashed.submit(Person("text:@dave", "dave"), "tea for 1h").body.startswith("Matched!")
    crashed.close()

    out = run_bot(tmp_path, "!iwant as @bob coffee for 1h")
    assert "[@bob] Matched! You meet localuser for coffee" in out
    assert out.count("[to @localuser] bob joins you for coffee") == 1
    assert out.count("[to @localuser] dave joins you for tea") == 1

    out = run_bot(tmp_path, "!iwant list")
    assert "[to @localuser]" not in out, "each notification is delivered once"
    assert "coffee at" in out and "with bob" in out and "with dave" in out
