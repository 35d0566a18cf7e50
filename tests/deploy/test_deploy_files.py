"""The deployment files, as far as this machine can test them (no image can be built here):
compose.yaml's structure, the Dockerfile's shape and its install steps run for real in a
fresh venv with its HEALTHCHECK against the bot they installed, the systemd unit through
``systemd-analyze verify``."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PLATFORMS = {"slack": "IWantSlack", "telegram": "IWantTelegram", "matrix": "IWantMatrix",
             "xmpp": "IWantXMPP"}  # fmt: skip


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions: (keyword, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def test_compose_runs_postgresql_and_one_bot_per_platform_once_it_is_healthy():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", *PLATFORMS}
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    backends = {p.stem for p in (REPO / "adapters" / "backends").glob("*.plug")}
    for name, backend in PLATFORMS.items():
        bot = services[name]
        assert bot["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        env = bot["environment"]
        assert env["IWANT_BACKEND"] == backend and backend in backends
        assert "@postgres:5432/" in env["IWANT_DATABASE_URL"]
        assert env["IWANT_HTTP_PORT"] == "9100" and env["IWANT_LOG_FORMAT"] == "json"
        assert bot["env_file"] == [".env"], "secrets from an env file"
        secret = [k for k in env if re.search(r"TOKEN|PASSWORD|SECRET", k)]
        assert secret == [], f"{name}: secrets belong in .env, not compose.yaml"
        assert any(v.endswith(":/data") for v in bot["volumes"])
        assert all(p.startswith("127.0.0.1:") for p in bot["ports"]), "metrics stay local"
        assert bot["stop_grace_period"] == "10s"


def test_the_env_example_names_every_platform_setting_config_reads():
    example = (REPO / "deploy" / "iwant.env.example").read_text()
    read = set(
        re.findall(
            r'_env\("((?:SLACK|TELEGRAM|MATRIX|XMPP)_\w+)"', (REPO / "config.py").read_text()
        )
    )
    assert read, "config.py reads the platforms' settings"
    missing = sorted(name for name in read if not re.search(rf"^#? ?{name}=", example, re.M))
    assert missing == []
    compose = (REPO / "compose.yaml").read_text()
    for name in re.findall(r"\$\{(\w+)", compose):
        assert re.search(rf"^#? ?{name}=", example, re.M), f"{name} is not in the example"


def test_the_dockerfile_is_multi_stage_non_root_with_a_health_check_and_a_volume():
    steps = dockerfile()
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    copied = [args for word, args in steps if word == "COPY" and args.startswith("--from=build")]
    assert copied == ["--from=build /wheels /wheels"], "the runtime gets only the wheels"
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("VOLUME", '["/data"]') in steps
    (check,) = [args for word, args in steps if word == "HEALTHCHECK"]
    assert "/healthz" in check
    assert ("CMD", '["iwant", "run"]') in steps
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "IWANT_DATA_DIR=/data" in env and "IWANT_HTTP_HOST=0.0.0.0" in env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_dockerfile_install_steps_in_a_fresh_venv_and_its_healthcheck(tmp_path):
    """The RUN pip lines as written, in a fresh venv (``--no-deps``: the dependencies come
    from this environment, as in test_wheel), then the HEALTHCHECK command against the bot
    they installed, run as the image's CMD would be."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheels = tmp_path / "wheels"
    runs = [args for word, args in dockerfile() if word == "RUN" and " pip " in f" {args}"]
    assert len(runs) == 2, runs
    for run in runs:
        for command in run.split("&&"):
            words = shlex.split(command.replace("/wheels", str(wheels)).replace("/src", str(REPO)))
            if words[0] == "pip":
                # --ignore-installed: the image has no iwant yet, but this environment's
                # editable one is on the path here.
                extra = ["--ignore-installed"] if words[1] == "install" else []
                words = [str(python), "-m", "pip", words[1], "--no-deps", "-q", *extra, *words[2:]]
            elif words[:2] != ["rm", "-rf"]:
                pytest.fail(f"a step this test does not know: {command}")
            subprocess.run(words, check=True, capture_output=True, timeout=300)
    assert not wheels.exists(), "the wheels are removed after installing"
    found = subprocess.run(
        [str(python), "-c", "import iwant_ops, iwant_engine; print(iwant_ops.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert str(venv) in found and str(REPO) not in found, found

    steps = dockerfile()
    (check,) = [args for word, args in steps if word == "HEALTHCHECK"]
    probe = yaml.safe_load(check.split(" CMD ", 1)[1])  # its JSON form
    assert probe[0] == "python"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IWANT_")}
    env.update(IWANT_DATA_DIR=str(tmp_path / "data"), IWANT_HTTP_PORT=str(port))
    bot = subprocess.Popen(
        [str(venv / "bin" / "iwant"), "run"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            healthy = subprocess.run([str(python), *probe[1:]], env=env, capture_output=True)
            if healthy.returncode == 0:
                break
            assert bot.poll() is None, "the bot exited"
            assert time.monotonic() < deadline, healthy.stderr.decode()[-1500:]
            time.sleep(0.5)
    finally:
        assert bot.stdin is not None
        bot.stdin.close()  # end of input: the console bot stops
        try:
            bot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()


def test_the_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = (REPO / "deploy" / "iwant@.service").read_text()
    assert "EnvironmentFile=/etc/iwant/%i.env" in unit and "KillSignal=SIGTERM" in unit
    # Verified as an instance, with the commands pointing at this environment's iwant.
    here = Path(sys.executable).parent
    assert (here / "iwant").exists()
    placed = tmp_path / "iwant@telegram.service"
    placed.write_text(unit.replace("/opt/iwant/bin/", f"{here}/"))
    done = subprocess.run(
        [analyze, "verify", str(placed)], capture_output=True, text=True, timeout=120
    )
    problems = [line for line in done.stderr.splitlines() if "iwant@" in line]
    assert done.returncode == 0 and problems == [], done.stderr
