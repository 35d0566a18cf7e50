"""The plugin manager of one engine: built-ins first, then installed entry points.

There is no module-level manager: each ``Engine`` builds its own, so two engines with
different strategies can run side by side. ``IWANT_TRACE_HOOKS=1`` logs every hook call.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker("iwant")
log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "iwant"
BUILTINS = (
    "iwant_engine.storage.sql",
    "iwant_engine.strategies.overlap",
    "iwant_engine.strategies.fresh_faces",
    "iwant_engine.strategies.quorum",
)


def make_plugin_manager(extra: tuple[object, ...] = ()) -> pluggy.PluginManager:
    """Built-in plugins, then every installed ``iwant`` entry point, then ``extra`` objects."""
    pm = pluggy.PluginManager("iwant")
    pm.add_hookspecs(hookspecs)
    for name in BUILTINS:
        pm.register(importlib.import_module(name), name=name)
    # Built-ins are also declared as entry points (pyproject.toml); skip what is loaded.
    for dist_plugin in _entry_points():
        if pm.is_registered(dist_plugin) or pm.has_plugin(dist_plugin.__name__):
            continue
        pm.register(dist_plugin, name=dist_plugin.__name__)
    for plugin in extra:
        pm.register(plugin)
    if os.environ.get("IWANT_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda message: log.info("hook: %s", message.rstrip()))
        pm.enable_tracing()
    return pm


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded.append(ep.load())
        except Exception as err:  # a broken third-party package must say so at start
            raise RuntimeError(f"plugin {ep.name!r} ({ep.value}) cannot be loaded: {err}") from err
    return loaded


def named(pm: pluggy.PluginManager, hook: str) -> dict[str, tuple[Any, str]]:
    """Merge a naming hook's mappings: name -> (thing, plugin name that gave it)."""
    merged: dict[str, tuple[Any, str]] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        for name, thing in (impl.function() or {}).items():
            if name in merged:
                raise RuntimeError(
                    f"{hook}: {name!r} is provided by both {merged[name][1]} and {impl.plugin_name}"
                )
            merged[name] = (thing, impl.plugin_name)
    return merged


def describe(pm: pluggy.PluginManager) -> list[tuple[str, list[str]]]:
    """Each registered plugin with the hooks it implements (like ``datasette plugins``)."""
    rows = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append((name, hooks))
    return rows
