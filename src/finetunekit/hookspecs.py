"""Hook specifications: the one way components enter finetunekit.

Every hook takes a single ``register`` callback and is called with keyword arguments.
A plugin module (or object) implements any of them with :data:`finetunekit.hookimpl`::

    @finetunekit.hookimpl
    def register_prompt_templates(register):
        register(finetunekit.PromptTemplateSet(name="faq", templates=["What is {title}?"]))

Each ``register`` validates what it receives and raises
:class:`~finetunekit.registry.DuplicateComponentError` (naming both plugins) when a name
is taken. Built-in components are registered through these same hooks.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT_NAME = "finetunekit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[..., None]


@hookspec
def register_prompt_templates(register: Register) -> None:
    """Register named sets of question templates.

    :param register: call ``register(template_set)`` with a
        :class:`~finetunekit.PromptTemplateSet`; its templates are validated (plain
        ``{field}`` placeholders only) when it is created.
    """


@hookspec
def register_response_formatters(register: Register) -> None:
    """Register named response formatters (how a row becomes the target answer).

    :param register: call ``register(formatter)`` with a
        :class:`~finetunekit.ResponseFormatter` subclass or instance that has a ``name``.
    """


@hookspec
def register_dataset_loaders(register: Register) -> None:
    """Register readers of source files, by format name and file suffixes.

    :param register: call ``register(loader)`` with a
        :class:`~finetunekit.data.DatasetLoader` (``name``, ``suffixes`` and
        ``iter_records(path, **options)`` yielding ``(line_number, dict)`` pairs).
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register fine-tuning backends.

    :param register: call ``register(trainer_class)`` with a
        :class:`~finetunekit.Trainer` subclass that has a ``name`` and an ``Options``
        pydantic model.
    """


@hookspec
def register_chat_models(register: Register) -> None:
    """Register chat-model backends (what answers questions).

    :param register: call ``register(chat_model_class)`` with a
        :class:`~finetunekit.ChatModel` subclass that has a ``name`` and an ``Options``
        pydantic model.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Register evaluation metrics.

    :param register: call ``register(metric_class)`` with a
        :class:`~finetunekit.Metric` subclass that has a ``name`` and an ``Options``
        pydantic model.
    """


@hookspec
def register_model_sources(register: Register) -> None:
    """Register named local model sources (e.g. ``smollm2-135m-instruct``): where weights come from.

    :param register: call ``register(source)`` with a
        :class:`~finetunekit.ModelSource` whose ``name`` can then be passed as ``model=`` to
        the local trainer and chat model.
    """


@hookspec
def register_cleaning_rules(register: Register) -> None:
    """Register named sets of corpus-specific cleaning rules (junk contents, boilerplate to cut).

    :param register: call ``register(rules)`` with a
        :class:`~finetunekit.CleaningRules`; ``Dataset.clean(rules=[name])`` and the config's
        ``dataset.clean.rules`` then use it.
    """


@hookspec(
    warn_on_impl=DeprecationWarning(
        "the hook register_models is deprecated: implement register_model_sources instead "
        "(same register callback); register_models will be removed in finetunekit 0.3"
    )
)
def register_models(register: Register) -> None:
    """Deprecated name of :func:`register_model_sources`; still called, with a warning."""


HOOK_NAMES: tuple[str, ...] = (
    "register_prompt_templates",
    "register_response_formatters",
    "register_dataset_loaders",
    "register_trainers",
    "register_chat_models",
    "register_metrics",
    "register_model_sources",
    "register_cleaning_rules",
)

#: Old hook names still called for a release: old name -> the hook that replaced it.
DEPRECATED_HOOKS: dict[str, str] = {"register_models": "register_model_sources"}

__all__ = ["hookspec", "hookimpl", "HOOK_NAMES", "DEPRECATED_HOOKS", "Register", *HOOK_NAMES, *DEPRECATED_HOOKS]


