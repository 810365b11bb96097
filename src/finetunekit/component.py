"""The base of every pluggable component class: a ``name`` and a pydantic ``Options`` model."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import pluggy
from pydantic import BaseModel, ConfigDict, ValidationError

from finetunekit.errors import ConfigError
from finetunekit.redaction import is_secret_key


class ComponentOptions(BaseModel):
    """Base for components' options: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming its dotted path (``trainer.options.n_epochs``).

    The offending value is shown, except for unknown keys and secret-looking ones, so that a
    misplaced API key never reaches a message.
    """
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in (prefix, *error["loc"]) if part != ""]
        path = ".".join(loc) or "<root>"
        hide = error["type"] == "extra_forbidden" or any(is_secret_key(part) for part in loc)
        shown = "" if hide else f" (got {error.get('input')!r})"
        lines.append(f"{path}: {error['msg']}{shown}")
    return "; ".join(lines)


def validate_options(
    model: type[BaseModel], options: Mapping[str, Any], *, where: str
) -> BaseModel:
    """``model.model_validate(options)``, turning a failure into a :class:`ConfigError`."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        raise ConfigError(f"invalid options: {format_validation_error(exc, where)}") from exc


class Component:
    """A named, configurable component (trainer, chat model, metric).

    Subclasses set ``name`` and may override ``Options`` with their own pydantic model.
    """

    name: ClassVar[str] = ""

    class Options(ComponentOptions):
        """No options."""

    def __init__(self, options: BaseModel | None = None, *, plugins: pluggy.PluginManager | None = None):
        self.options = options if options is not None else self.Options()
        self.plugins = plugins

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], *, plugins: pluggy.PluginManager | None = None
    ) -> Any:
        """Build an instance from a mapping, validated by ``cls.Options``."""
        validated = validate_options(cls.Options, options, where=cls.name)
        return cls(validated, plugins=plugins)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"
