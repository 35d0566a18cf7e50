"""The local console as a newcomer meets it: a real ``errbot -T`` process (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ERRBOT = Path(sys.executable).with_name("errbot")


def console(data_dir: Path, *lines: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IWANT_")}
    env.update(IWANT_DATA_DIR=str(data_dir), IWANT_POLL_SECONDS="3600", NO_COLOR="1")
    env.update(env_extra)
    return subprocess.run(
        [str(ERRBOT), "-c", str(REPO / "config.py"), "-T"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_the_welcome_screens_commands_play_other_people(tmp_path):
    done = console(
        tmp_path,
        "!asuser @mallory",
        "!iwant plugins",
        "!asadmin",
        "!iwant plugins",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert 'Command "asuser" not found' not in out
    assert "You are now: @mallory." in out
    assert "This command requires bot-admin privileges" in out
    assert "You are now an admin: @localuser." in out
    assert "overlap from iwant_engine.strategies.overlap  (active)" in out


def test_a_bad_plugins_cfg_stops_the_console_with_one_line(tmp_path):
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[engine]\nstrategy = nosuch\n[activities]\ncoffee = 15, 6\n")
    done = console(tmp_path, "!iwant help", IWANT_PLUGINS_CFG=str(cfg))
    assert done.returncode == 2
    assert "iwant cannot start: plugins.cfg: unknown strategy 'nosuch'" in done.stderr
    assert 'Command "iwant" not found' not in done.stdout


def test_acting_as_someone_marks_every_reply_and_list_names_their_activity(tmp_path):
    done = console(
        tmp_path,
        "!iwant as @olga tz europe/prague",
        "!iwant as @carol list",
        "!iwant as @carol lunch tomorrow 12:00",
        "!iwant as @carol list",
        "!iwant as @carol cancel tennis",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "[@olga] Your time zone is now Europe/Prague" in out
    assert "[@carol] You have no open requests." in out
    assert "Cancel one with !iwant cancel 1 (or !iwant cancel lunch)." in out
    assert "[@carol] You have no open tennis request" in out
