"""The ``iwant`` command (also ``python -m iwant_engine``).

- ``iwant run``: the bot, through errbot, with the ``config.py`` next to the ``iwant_plugins``
  folder: the checkout's, or the copy an installed wheel keeps in ``<prefix>/share/iwant``.
  The Text console by default; ``IWANT_BACKEND`` and the other ``IWANT_*`` variables choose.
- ``iwant plugins [--check]``: what is installed and what ``plugins.cfg`` makes active;
  ``--check`` also builds every active strategy with its settings and fails on a bad one.
  The ``plugins.cfg`` read: ``--config``, else ``IWANT_PLUGINS_CFG``, else ``./plugins.cfg``,
  else the packaged one next to ``config.py`` (the one ``iwant run`` uses), else the built-in
  defaults.
- ``iwant migrate``: bring the database (``IWANT_DATABASE_URL``) to the newest schema.
- ``iwant forget PERSON_ID``: delete a person and everything that is theirs, as ``!iwant
  forget me`` does (for an admin answering a request made by e-mail); prints what it deleted.
- ``iwant stats --json|--csv [--period week|month|year] [--room ROOM]``: the figures of
  ``!iwant stats`` (counts only; "fewer than 3" where fewer people stand behind one) of every
  pool, or of one room's (``slack:C0123``) or pool (``pool:office``), in the default zone.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings as settings_mod
from .plugins import make_plugin_manager, named, report

if TYPE_CHECKING:
    from .engine import Engine

CHECKOUT = Path(__file__).resolve().parents[1]
INSTALLED = Path(sysconfig.get_path("data")) / "share" / "iwant"
#: ``iwant --help``: plain text (the module's docstring is reStructuredText).
DESCRIPTION = (
    "iwant puts people together who want the same thing at the same time. The iwant "
    "command (also python -m iwant_engine) runs the bot and looks after its plugins and "
    "database."
)
CONFIG_HELP = (
    "path of plugins.cfg (default: IWANT_PLUGINS_CFG, else ./plugins.cfg, else the packaged "
    "one next to config.py, which iwant run uses, else the built-in defaults)"
)


def plugins_report(cfg_path: str | None = None) -> str:
    """What ``plugins.cfg`` at ``cfg_path`` would run with, without starting an engine."""
    return report(make_plugin_manager(), settings_mod.load(cfg_path))


def check(cfg_path: str | None = None) -> str:
    """Build what ``plugins.cfg`` names (storage and strategies, with their settings) without
    touching a database; a line per (pool or activity) rule. ``SettingsError`` on a bad one."""
    cfg = settings_mod.load(cfg_path)
    pm = make_plugin_manager()
    storages, strategies = named(pm, "iwant_storages"), named(pm, "iwant_strategies")
    if cfg.storage not in storages:
        known = ", ".join(sorted(storages))
        raise settings_mod.SettingsError(
            f"plugins.cfg: unknown storage {cfg.storage!r}; installed: {known}"
        )
    lines = [f"storage {cfg.storage}"]
    rules = {"(default)": cfg.strategy, **cfg.strategy_rules}
    for where, name in rules.items():
        if name not in strategies:
            known = ", ".join(sorted(strategies))
            raise settings_mod.SettingsError(
                f"plugins.cfg: unknown strategy {name!r}; installed: {known}"
            )
        try:
            strategies[name][0](cfg.strategy_settings.get(name, {}))
        except ValueError as err:
            raise settings_mod.SettingsError(f"plugins.cfg [strategy:{name}]: {err}") from None
        lines.append(f"strategy {name} for {where}")
    for name in sorted(set(cfg.strategy_settings) - set(rules.values())):
        active = ", ".join(sorted(set(rules.values())))
        raise settings_mod.SettingsError(
            f"plugins.cfg [strategy:{name}]: no active strategy has that name (active: "
            f"{active}); a misspelling?"
        )
    return "\n".join(lines)


def _packaged_cfg() -> Path | None:
    """The plugins.cfg next to the config.py that ``iwant run`` uses, if there is one."""
    try:
        packaged = _home() / "plugins.cfg"
    except SystemExit:
        return None
    return packaged if packaged.is_file() else None


def _config(given: str | None) -> tuple[str | None, str]:
    """The plugins.cfg to read (None: the built-in defaults), and how to name it."""
    for path in (given, os.environ.get("IWANT_PLUGINS_CFG")):
        if path:
            return path, str(Path(path).resolve())
    for place in (Path("plugins.cfg"), _packaged_cfg()):
        if place is not None and place.is_file():
            return str(place), str(place.resolve())
    return None, "the built-in defaults (no plugins.cfg found)"


def _home() -> Path:
    """Where config.py, plugins.cfg and iwant_plugins/ are."""
    for place in (CHECKOUT, INSTALLED):
        if (place / "config.py").is_file() and (place / "iwant_plugins").is_dir():
            return place
    raise SystemExit("iwant: config.py and iwant_plugins/ are not installed next to iwant")


def run(extra: list[str]) -> int:
    """errbot with iwant's config.py; on the Text backend, its console (``-T``)."""
    command = [sys.executable, "-m", "errbot.cli", "-c", str(_home() / "config.py")]
    if os.environ.get("IWANT_BACKEND", "Text") == "Text":
        command.append("-T")
    # errbot replaces this process rather than running under it: SIGTERM (docker stop,
    # systemctl stop) then reaches the bot itself, which stops cleanly.
    os.execv(sys.executable, [*command, *extra])


def migrate(cfg_path: str | None) -> int:
    engine = _engine(cfg_path)
    if engine is None:
        return 1
    engine.close()
    print(f"iwant: the database is at the newest schema ({engine.settings.storage})")
    return 0


def _engine(cfg_path: str | None) -> Engine | None:
    """The engine a bot started here would run (its database migrated), or None (said why)."""
    from .engine import Engine
    from .errors import Unavailable

    # The same default as config.py: data/ of the checkout, else of the current folder.
    default = (CHECKOUT if (CHECKOUT / "pyproject.toml").is_file() else Path.cwd()) / "data"
    data_dir = Path(os.environ.get("IWANT_DATA_DIR") or default)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return Engine.from_environment(cfg_path, data_dir=str(data_dir))
    except Unavailable as err:
        print(f"iwant: {err}", file=sys.stderr)
        return None


def forget(cfg_path: str | None, person_id: str) -> int:
    """Delete ``person_id`` and everything that is theirs; print the rows per table."""
    from .identity import valid_person_id

    if not valid_person_id(person_id):
        print(f"iwant: {person_id!r} is not a person id (platform:id, like slack:U0123)",
              file=sys.stderr)  # fmt: skip
        return 2
    engine = _engine(cfg_path)
    if engine is None:
        return 1
    try:
        counts = engine.forget(person_id)
    finally:
        engine.close()
    deleted = ", ".join(f"{table} {n}" for table, n in sorted(counts.items()))
    print(f"iwant: forgot {person_id}: {deleted} (rows deleted or changed per table)")
    return 0


def flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"hours": {"09": 4}}`` as ``[("hours.09", 4)]``, in order."""
    rows: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            rows += flatten(value, f"{prefix}{key}.")
        else:
            rows.append((prefix + key, value))
    return rows


def stats_report(cfg_path: str | None, form: str, period: str, room: str | None) -> int:
    """Print a period's figures as JSON or CSV (``figure,value`` lines)."""
    from zoneinfo import ZoneInfo

    from . import stats

    if room is not None and (":" not in room or len(room) > 200):
        print(f"iwant: --room {room!r}: write platform:room (slack:C0123) or pool:name",
              file=sys.stderr)  # fmt: skip
        return 2
    engine = _engine(cfg_path)
    if engine is None:
        return 1
    try:
        zone = ZoneInfo(engine.settings.default_timezone)
        pools = None if room is None else [engine.settings.pool_of(room)]
        rows, since, until = engine.stats_figures(pools, period, zone)
    finally:
        engine.close()
    figures = stats.as_dict(rows, room or "all", period, since, until, zone)
    if form == "json":
        print(json.dumps(figures, indent=1))
        return 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("figure", "value"))
    writer.writerows(flatten(figures))
    print(out.getvalue(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iwant", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    plugins = sub.add_parser("plugins", help="list installed plugins and the active ones")
    plugins.add_argument(
        "--check", action="store_true", help="build the active ones; fail on a bad setting"
    )
    forgetting = sub.add_parser("forget", help="delete a person and everything that is theirs")
    forgetting.add_argument("person", help="their id, platform:id (slack:U0123, telegram:42)")
    migrating = sub.add_parser("migrate", help="bring the database up to date")
    figures = sub.add_parser(
        "stats",
        help="the figures of !iwant stats, counts only, as JSON or CSV (for admins)",
        description="The figures of !iwant stats on IWANT_DATABASE_URL, counts only: a count "
        'that fewer than 3 people stand behind reads "fewer than 3". Hours and days are in '
        "IWANT_TIMEZONE.",
    )
    form = figures.add_mutually_exclusive_group(required=True)
    form.add_argument("--json", dest="form", action="store_const", const="json")
    form.add_argument("--csv", dest="form", action="store_const", const="csv",
                      help="figure,value lines")  # fmt: skip
    figures.add_argument("--period", choices=("week", "month", "year"), default="week",
                         help="the period ending now (default: week)")  # fmt: skip
    figures.add_argument(
        "--room", help="one room's pool (slack:C0123) or a pool (pool:office); default: all"
    )
    for cmd in (plugins, migrating, forgetting, figures):
        cmd.add_argument("--config", help=CONFIG_HELP)
    sub.add_parser("run", help="run the bot (the Text console unless IWANT_BACKEND says)")
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        return run(extra)  # errbot's own options pass through
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    config, source = _config(args.config)
    try:
        if args.command == "migrate":
            return migrate(config)
        if args.command == "forget":
            return forget(config, args.person)
        if args.command == "stats":
            return stats_report(config, args.form, args.period, args.room)
        print(f"plugins.cfg: {source}")
        print(plugins_report(config))
        if args.check:
            print(check(config))
            print(f"Checked {source}: fine, its storage and strategies build with their settings.")
    except (settings_mod.SettingsError, RuntimeError) as err:
        print(f"iwant: {err} (read: {source})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
