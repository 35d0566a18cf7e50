"""``python -m iwant_engine plugins``: what is installed and what plugins.cfg makes active."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import settings as settings_mod
from .plugins import describe, make_plugin_manager, named


def plugins_report(cfg_path: str | None = None) -> str:
    pm = make_plugin_manager()
    cfg = settings_mod.load(cfg_path)
    lines = ["Plugins (hooks they implement):"]
    lines += [f"  {name}: {', '.join(hooks) or '-'}" for name, hooks in describe(pm)]
    for hook, active in (("iwant_storages", cfg.storage), ("iwant_strategies", cfg.strategy)):
        kind = hook.removeprefix("iwant_")
        lines.append(f"{kind.capitalize()}:")
        for name, (_, plugin) in sorted(named(pm, hook).items()):
            mark = "  (active)" if name == active else ""
            lines.append(f"  {name} from {plugin}{mark}")
    return "\n".join(lines)


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
