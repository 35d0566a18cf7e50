"""The built wheel runs the bot on its own: installed into a fresh virtual environment in a
temporary folder, away from the checkout, ``iwant run`` answers a two-person session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_wheel_in_a_fresh_venv_runs_the_console_bot(tmp_path):
    # Built from a copy without the checkout's build/: setuptools reuses build/lib, so a
    # migration renamed since the last build would be packed twice (alembic then refuses).
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "data", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("iwant-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The dependencies come from this environment (a plain path: its .pth files, among them
    # the checkout's editable install, are not read); iwant itself only from the wheel.
    site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    where = tmp_path / "elsewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IWANT_")}
    env.update(NO_COLOR="1", IWANT_POLL_SECONDS="3600")
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import iwant_engine; print(iwant_engine.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=where,
        check=True,
    ).stdout
    assert str(venv) in found and str(REPO) not in found, found

    done = subprocess.run(
        [str(venv / "bin" / "iwant"), "run"],
        input="!iwant coffee for 1h\n!iwant as @bob coffee in 20 min\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=where,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Waiting for coffee company" in done.stdout
    assert "[@bob] Matched! You meet localuser for coffee" in done.stdout
    assert "[to @localuser] bob joins you for coffee" in done.stdout
    assert (where / "data" / "iwant.db").is_file(), "the data lives where it runs"

    checked = subprocess.run(
        [str(venv / "bin" / "iwant"), "plugins", "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=where,
    )
    assert checked.returncode == 0 and "strategy overlap for (default)" in checked.stdout
    bad = where / "plugins.cfg"
    bad.write_text("[engine]\nstrategy = quorum\n[strategy:quorum]\nmin_size = 99\n")
    refused = subprocess.run(
        [str(venv / "bin" / "iwant"), "plugins", "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=where,
    )
    assert refused.returncode == 2
    assert "iwant: plugins.cfg [strategy:quorum]: min_size = '99'" in refused.stderr
