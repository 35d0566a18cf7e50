"""The plugin manager of one engine: built-ins first, then installed entry points.

There is no module-level manager: each ``Engine`` builds its own, so two engines with
different strategies can run side by side. ``IWANT_TRACE_HOOKS=1`` logs every hook call.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable
from typing import Any, cast

import pluggy

from . import hookspecs
from .hookspecs import Decide
from .hookspecs import hookimpl as hookimpl  # where plugins have always found it
from .settings import Settings, SettingsError
from .storage.protocol import Storage

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "iwant"
#: Built-in plugins, registered by module like any other plugin (datasette's DEFAULT_PLUGINS);
#: third-party ones come from the ``iwant`` entry point group.
BUILTINS = (
    "iwant_engine.storage.sql",
    "iwant_engine.storage.memory",
    "iwant_engine.strategies.overlap",
    "iwant_engine.strategies.fresh_faces",
    "iwant_engine.strategies.quorum",
    "iwant_engine.suggestions",
    "iwant_engine.calendars.feed",
    "iwant_engine.calendars.caldav_provider",
)


def make_plugin_manager(extra: tuple[object, ...] = ()) -> pluggy.PluginManager:
    """Built-in plugins, then every installed ``iwant`` entry point, then ``extra`` objects."""
    pm = pluggy.PluginManager("iwant")
    pm.add_hookspecs(hookspecs)
    if os.environ.get("IWANT_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda message: log.info("hook: %s", message.rstrip()))
        pm.enable_tracing()
    for name in BUILTINS:
        pm.register(importlib.import_module(name), name=name)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as err:  # a broken third-party package must say so at start
        raise RuntimeError(f"an iwant plugin cannot be loaded: {err}") from err
    for plugin in extra:
        pm.register(plugin)
    return pm


def named(pm: pluggy.PluginManager, hook: str) -> dict[str, tuple[Any, str]]:
    """Merge a naming hook's mappings: name -> (thing, plugin name that gave it).

    Each plugin's implementation is called through a subset of ``pm.hook`` (so tracing sees
    every call), which tells which plugin gave which name."""
    impls = getattr(pm.hook, hook).get_hookimpls()
    merged: dict[str, tuple[Any, str]] = {}
    for impl in impls:
        others = [i.plugin for i in impls if i.plugin is not impl.plugin]
        for mapping in pm.subset_hook_caller(hook, remove_plugins=others)():
            for name, thing in mapping.items():
                if name in merged:
                    raise RuntimeError(
                        f"{hook}: {name!r} is provided by both {merged[name][1]} "
                        f"and {impl.plugin_name}"
                    )
                merged[name] = (thing, impl.plugin_name)
    return merged


def chosen_storage(pm: pluggy.PluginManager, settings: Settings) -> Callable[..., Storage]:
    """The factory of the storage ``settings`` name (``[engine] storage``)."""
    storages = named(pm, "iwant_storages")
    if settings.storage not in storages:
        raise SettingsError(
            f"plugins.cfg: unknown storage {settings.storage!r}; installed: "
            f"{', '.join(sorted(storages))}"
        )
    return cast(Callable[..., Storage], storages[settings.storage][0])


def chosen_strategies(pm: pluggy.PluginManager, settings: Settings) -> dict[str, Decide]:
    """Every strategy ``settings`` use (the default one and those of ``[strategies]``), made
    with its ``[strategy:<name>]`` settings: name -> decide function."""
    strategies = named(pm, "iwant_strategies")
    chosen: dict[str, Decide] = {}
    for name in sorted({settings.strategy, *settings.strategy_rules.values()}):
        if name not in strategies:
            raise SettingsError(
                f"plugins.cfg: unknown strategy {name!r}; installed: "
                f"{', '.join(sorted(strategies))}"
            )
        try:
            chosen[name] = strategies[name][0](settings.strategy_settings.get(name, {}))
        except ValueError as err:
            raise SettingsError(f"plugins.cfg [strategy:{name}]: {err}") from None
    return chosen


def version_of(pm: pluggy.PluginManager, plugin: object) -> str:
    """The version of the distribution a plugin came from (iwant's own for built-ins)."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return str(dist.version)
    try:
        return importlib.metadata.version("iwant")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def describe(pm: pluggy.PluginManager) -> list[tuple[str, str, list[str]]]:
    """Each registered plugin with its version and the hooks it implements (like
    ``datasette plugins``)."""
    rows = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append((name, version_of(pm, plugin), hooks))
    return rows


def report(pm: pluggy.PluginManager, settings: Settings) -> str:
    """The plugins of ``pm`` with versions and hooks, then the storages and strategies they
    name, those that ``settings`` make active marked."""
    lines = ["Plugins (version: hooks they implement):"]
    lines += [
        f"  {name} {version}: {', '.join(hooks) or '-'}" for name, version, hooks in describe(pm)
    ]
    in_use = {
        "iwant_storages": {settings.storage},
        "iwant_strategies": {settings.strategy, *settings.strategy_rules.values()},
    }
    for hook, active in in_use.items():
        lines.append(f"{hook.removeprefix('iwant_').capitalize()}:")
        for name, (_, plugin) in sorted(named(pm, hook).items()):
            mark = "  (active)" if name in active else ""
            lines.append(f"  {name} from {plugin}{mark}")
    return "\n".join(lines)
