"""Plugin managers: built-in components and installed plugins, with no global state."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from importlib import metadata
from pathlib import Path

import pluggy

from finetunekit import hookspecs
from finetunekit.errors import FinetunekitError

ENTRY_POINT_GROUP = "finetunekit"

#: Modules that register the built-in components, through the same hooks as any plugin.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "finetunekit.data.jsonl",
    "finetunekit.data.tabular",
    "finetunekit.data.hf_datasets",
    "finetunekit.backends.local.sources",
    "finetunekit.backends.local.chat",
    "finetunekit.backends.openai.chat",
    "finetunekit.backends.local.trainer",
    "finetunekit.backends.openai.trainer",
    "finetunekit.evaluation.metrics",
    # every module of finetunekit.builtin: the built-in configurations, ordinary plugins
    *(f"finetunekit.builtin.{m.name}" for m in pkgutil.iter_modules([str(Path(__file__).parent / "builtin")]) if not m.ispkg),
)


def create_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """Return a new plugin manager holding the built-ins and, optionally, installed plugins.

    Installed plugins are the modules named in the ``finetunekit`` entry-point group of any
    installed distribution. Each call builds a fresh manager, so tests never share state.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entrypoints:
        load_installed_plugins(pm)
    return pm


class PluginLoadError(FinetunekitError, ImportError):
    """An installed plugin's entry point could not be loaded or registered."""


def load_installed_plugins(pm: pluggy.PluginManager) -> None:
    """Register the module of every entry point in the ``finetunekit`` group, by its name.

    A plugin that fails to import or register raises :class:`PluginLoadError` naming the
    entry point and its distribution, so a user knows which package to fix or uninstall.
    """
    seen: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        for entry_point in dist.entry_points:
            if entry_point.group != ENTRY_POINT_GROUP:
                continue
            origin = (dist.metadata["Name"], entry_point.value)
            where = f"plugin {entry_point.name!r} ({entry_point.value}, from {origin[0]})"
            if seen.get(entry_point.name) == origin:
                continue  # the same distribution, found twice on sys.path
            if entry_point.name in seen or pm.has_plugin(entry_point.name):
                first = seen.get(entry_point.name, ("finetunekit", entry_point.name))
                raise PluginLoadError(
                    f"{where} has the same name as plugin {entry_point.name!r} ({first[1]}, from {first[0]}); "
                    "uninstall one of them or rename its entry point"
                )
            seen[entry_point.name] = origin
            try:
                pm.register(entry_point.load(), name=entry_point.name)
            except Exception as exc:
                raise PluginLoadError(f"{where} could not be loaded: {type(exc).__name__}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def default_plugin_manager() -> pluggy.PluginManager:
    """The manager used when a caller passes none: built-ins and installed plugins, built once
    per process on first use (as ``llm`` does) and then shared.

    Tests and programs that register plugins of their own build a fresh manager with
    :func:`create_plugin_manager` and pass it as ``plugins=``; a plugin installed while the
    process runs is found after :func:`reset_default_plugin_manager`.
    """
    return create_plugin_manager(load_entrypoints=True)


def reset_default_plugin_manager() -> None:
    """Forget the cached default manager; the next look-up builds it again."""
    default_plugin_manager.cache_clear()


def resolve_plugin_manager(plugins: pluggy.PluginManager | None) -> pluggy.PluginManager:
    """``plugins`` itself, or the default manager when it is ``None``."""
    return plugins if plugins is not None else default_plugin_manager()


def plugin_hooks(pm: pluggy.PluginManager) -> dict[str, list[str]]:
    """Map each registered plugin's name to the hooks it implements."""
    hooks: dict[str, list[str]] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks[name] = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
    return hooks
