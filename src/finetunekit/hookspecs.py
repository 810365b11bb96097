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
def register_models(register: Register) -> None:
    """Register named local model sources (e.g. ``smollm2-135m-instruct``).

    :param register: call ``register(source)`` with a
        :class:`~finetunekit.models.ModelSource` whose ``name`` can then be passed as
        ``model=`` to the local trainer and chat model.
    """


HOOK_NAMES: tuple[str, ...] = (
    "register_prompt_templates",
    "register_response_formatters",
    "register_dataset_loaders",
    "register_trainers",
    "register_chat_models",
    "register_metrics",
    "register_models",
)

__all__ = ["hookspec", "hookimpl", "HOOK_NAMES", "Register", *HOOK_NAMES]


