"""Typed registries filled from plugin hooks, and the ``get_*`` look-ups built on them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, TypeVar

import pluggy

from finetunekit.errors import FinetunekitError
from finetunekit.hookspecs import DEPRECATED_HOOKS
from finetunekit.plugins import resolve_plugin_manager

if TYPE_CHECKING:
    from finetunekit.evaluation.base import Metric
    from finetunekit.chat import ChatModel
    from finetunekit.training import Trainer

T = TypeVar("T")


class UnknownComponentError(FinetunekitError, LookupError):
    """No component of that kind has that name; the message lists the names there are."""

    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = kind, name, available
        names = ", ".join(repr(n) for n in available) or "none"
        super().__init__(f"unknown {kind} {name!r}; available: {names}")

    def __reduce__(self):  # picklable despite the three-argument constructor
        return (type(self), (self.kind, self.name, self.available))


class DuplicateComponentError(FinetunekitError, ValueError):
    """Two plugins registered the same name for the same kind of component."""

    def __init__(self, kind: str, name: str, first_plugin: str, second_plugin: str) -> None:
        self.kind, self.name = kind, name
        self.first_plugin, self.second_plugin = first_plugin, second_plugin
        super().__init__(
            f"{kind} {name!r} is registered twice: by plugin {first_plugin!r} and by plugin "
            f"{second_plugin!r}; uninstall one of them or rename the component"
        )

    def __reduce__(self):  # picklable despite the four-argument constructor
        return (type(self), (self.kind, self.name, self.first_plugin, self.second_plugin))


class InvalidComponentError(FinetunekitError, TypeError):
    """A plugin passed something to ``register`` that is not a component of that kind."""


class ComponentRegistry(Generic[T]):
    """Named components of one kind, each remembered with the plugin that registered it."""

    def __init__(self, kind: str, name_of: Callable[[Any], str]) -> None:
        self.kind = kind
        self._name_of = name_of
        self._entries: dict[str, tuple[T, str]] = {}

    def register(self, component: T, *, plugin: str) -> None:
        """Add ``component``; raise if its name is taken (naming both plugins)."""
        try:
            name = self._name_of(component)
        except (TypeError, AttributeError, ValueError) as exc:
            raise InvalidComponentError(
                f"plugin {plugin!r} registered an invalid {self.kind}: {exc}"
            ) from exc
        if name in self._entries:
            raise DuplicateComponentError(self.kind, name, self._entries[name][1], plugin)
        self._entries[name] = (component, plugin)

    def get(self, name: str) -> T:
        """The component called ``name``, or :class:`UnknownComponentError`."""
        try:
            return self._entries[name][0]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self.names()) from None

    def plugin_of(self, name: str) -> str:
        """The name of the plugin that registered ``name``."""
        self.get(name)
        return self._entries[name][1]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[tuple[str, T]]:
        return ((name, entry[0]) for name, entry in sorted(self._entries.items()))

    def __len__(self) -> int:
        return len(self._entries)


def collect(
    hook_name: str, kind: str, name_of: Callable[[Any], str], plugins: pluggy.PluginManager | None
) -> ComponentRegistry[Any]:
    """Call one ``register_*`` hook on every plugin, each with a callback that knows its plugin."""
    pm = resolve_plugin_manager(plugins)
    registry: ComponentRegistry[Any] = ComponentRegistry(kind, name_of)
    old_names = [old for old, new in DEPRECATED_HOOKS.items() if new == hook_name]
    for name in (hook_name, *old_names):
        for impl in getattr(pm.hook, name).get_hookimpls():  # registration order
            def register(component: Any, _plugin: str = impl.plugin_name) -> None:
                registry.register(component, plugin=_plugin)

            impl.function(register=register)
    return registry


def _subclass_name(base_path: str) -> Callable[[Any], str]:
    """A ``name_of`` that accepts subclasses of the class at ``module:Class`` with a ``name``."""

    def name_of(component: Any) -> str:
        module_name, class_name = base_path.split(":")
        base = getattr(__import__(module_name, fromlist=[class_name]), class_name)
        if not (isinstance(component, type) and issubclass(component, base)):
            raise TypeError(f"expected a subclass of {class_name}, got {component!r}")
        return _checked_name(component)

    return name_of


def _instance_name(base_path: str, *, classes_too: bool = False) -> Callable[[Any], str]:
    """A ``name_of`` that accepts instances (and optionally subclasses) of ``module:Class``."""

    def name_of(component: Any) -> str:
        module_name, class_name = base_path.split(":")
        base = getattr(__import__(module_name, fromlist=[class_name]), class_name)
        ok = isinstance(component, base) or (
            classes_too and isinstance(component, type) and issubclass(component, base)
        )
        if not ok:
            raise TypeError(f"expected a {class_name}, got {component!r}")
        return _checked_name(component)

    return name_of


def _checked_name(component: Any) -> str:
    name = getattr(component, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{component!r} has no non-empty string 'name'")
    return name


#: hook name -> (kind shown in messages, validator returning the component's name)
KINDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "register_prompt_templates": (
        "prompt template set", _instance_name("finetunekit.examples.prompts:PromptTemplateSet")
    ),
    "register_response_formatters": (
        "response formatter",
        _instance_name("finetunekit.examples.formatters:ResponseFormatter", classes_too=True),
    ),
    "register_dataset_loaders": (
        "dataset loader", _instance_name("finetunekit.data.loaders:DatasetLoader")
    ),
    "register_trainers": ("trainer", _subclass_name("finetunekit.training:Trainer")),
    "register_chat_models": ("chat model", _subclass_name("finetunekit.chat:ChatModel")),
    "register_metrics": ("metric", _subclass_name("finetunekit.evaluation.base:Metric")),
    "register_model_sources": ("model source", _instance_name("finetunekit.backends.local.sources:ModelSource")),
    "register_cleaning_rules": ("cleaning rules", _instance_name("finetunekit.data.cleaning:CleaningRules")),
}


def registry_for(hook_name: str, plugins: pluggy.PluginManager | None = None) -> ComponentRegistry[Any]:
    """The registry that the hook ``hook_name`` fills, collected from ``plugins`` now."""
    kind, name_of = KINDS[hook_name]
    return collect(hook_name, kind, name_of, plugins)


def get_trainer(name: str, *, plugins: pluggy.PluginManager | None = None, **options: Any) -> Trainer:
    """The trainer called ``name``, built with ``options`` checked by its ``Options`` model."""
    cls = registry_for("register_trainers", plugins).get(name)
    return cls.from_options(options, plugins=plugins)


def get_chat_model(
    name: str, *, plugins: pluggy.PluginManager | None = None, **options: Any
) -> ChatModel:
    """The chat model backend called ``name``, built with validated ``options``."""
    cls = registry_for("register_chat_models", plugins).get(name)
    return cls.from_options(options, plugins=plugins)


def get_metric(name: str, *, plugins: pluggy.PluginManager | None = None, **options: Any) -> Metric:
    """The metric called ``name``, built with validated ``options``."""
    cls = registry_for("register_metrics", plugins).get(name)
    return cls.from_options(options, plugins=plugins)
