"""``python -m iwant_engine plugins``: what is installed and what plugins.cfg makes active."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import settings as settings_mod
from .plugins import make_plugin_manager, report


def plugins_report(cfg_path: str | None = None) -> str:
    """What ``plugins.cfg`` at ``cfg_path`` would run with, without starting an engine."""
    return report(make_plugin_manager(), settings_mod.load(cfg_path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iwant_engine")
    sub = parser.add_subparsers(dest="command", required=True)
    plugins = sub.add_parser("plugins", help="list installed plugins and the active ones")
    plugins.add_argument(
        "--config", help="path of plugins.cfg (default: IWANT_PLUGINS_CFG, else ./plugins.cfg)"
    )
    args = parser.parse_args(argv)
    config = args.config or os.environ.get("IWANT_PLUGINS_CFG")
    if config is None and Path("plugins.cfg").is_file():
        config = "plugins.cfg"
    try:
        print(plugins_report(config))
    except (settings_mod.SettingsError, RuntimeError) as err:
        print(f"iwant: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
