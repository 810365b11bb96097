"""The base of every pluggable component class: a ``name`` and a pydantic ``Options`` model.

The ``Options`` model is also the contract between the pipeline and a component. Each field
declares, through :func:`option`, what it means to a run (no name lists anywhere else):

- ``affects_result=False``: how the component talks, logs or caches, not what it produces
  (timeouts, retries, progress bars). Left out of fingerprints and answer-cache keys, so
  changing it never blocks resuming a run.
- ``secret=True``: never written to a manifest, log or message.
- ``pipeline="seed"`` or ``pipeline="answer_cache_dir"``: a value the pipeline fills in when
  the config leaves the field unset (the run's seed; a per-model answer cache in the run dir).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

import pluggy
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finetunekit.errors import ConfigError
from finetunekit.redaction import collect_secrets, is_secret_key, scrub


#: Values the pipeline can provide to an option that declares it (``option(pipeline=...)``).
PipelineValue = Literal["seed", "answer_cache_dir"]
CONTRACT_KEY = "finetunekit"


def option(
    default: Any = ...,
    *,
    description: str,
    affects_result: bool = True,
    secret: bool = False,
    pipeline: PipelineValue | None = None,
    **field_kwargs: Any,
) -> Any:
    """A pydantic ``Field`` that also declares what the option means to a run (see the module doc)."""
    contract = {"affects_result": affects_result, "secret": secret, "pipeline": pipeline}
    return Field(default, description=description, json_schema_extra={CONTRACT_KEY: contract}, **field_kwargs)


class ComponentOptions(BaseModel):
    """Base for components' options: unknown keys are errors, values are validated.

    Declare fields with :func:`option` to tell the pipeline how to treat them; a plain
    ``Field`` is a result-changing, non-secret option the pipeline never fills in.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @classmethod
    def contract(cls, field: str) -> dict[str, Any]:
        """``{"affects_result", "secret", "pipeline"}`` as declared for ``field``."""
        extra = cls.model_fields[field].json_schema_extra
        declared = extra.get(CONTRACT_KEY, {}) if isinstance(extra, dict) else {}
        return {"affects_result": True, "secret": False, "pipeline": None, **declared}

    @classmethod
    def result_fields(cls) -> frozenset[str]:
        """Fields that change what the component produces (fingerprinted, part of cache keys)."""
        return frozenset(name for name in cls.model_fields if cls.contract(name)["affects_result"])

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Fields declared secret."""
        return frozenset(name for name in cls.model_fields if cls.contract(name)["secret"])

    @classmethod
    def pipeline_fields(cls) -> dict[str, str]:
        """``{field: value}`` for the fields the pipeline fills in when unset."""
        return {name: c["pipeline"] for name in cls.model_fields if (c := cls.contract(name))["pipeline"]}

    @classmethod
    def result_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``options`` (a config mapping) that change results."""
        keep = cls.result_fields()
        return {key: value for key, value in options.items() if key in keep}


def format_validation_error(exc: ValidationError, prefix: str = "", secret_fields: Any = ()) -> str:
    """One line per problem, each naming its dotted path (``trainer.options.n_epochs``).

    The offending value is shown, except for unknown keys, secret-looking ones and ``secret``
    fields (named in ``secret_fields``), and the text is scrubbed of secret values, so that a
    misplaced API key never reaches a message.
    """
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in (prefix, *error["loc"]) if part != ""]
        path = ".".join(loc) or "<root>"
        hide = (error["type"] in ("extra_forbidden", "missing") or any(is_secret_key(part) for part in loc)
                or bool(set(loc) & set(secret_fields)))
        shown = "" if hide else f" (got {error.get('input')!r:.200})"
        lines.append(f"{path}: {error['msg']}{shown}")
    return scrub("; ".join(lines))


def validate_options(
    model: type[BaseModel], options: Mapping[str, Any], *, where: str
) -> BaseModel:
    """``model.model_validate(options)``, turning a failure into a :class:`ConfigError`.

    The values of the model's ``secret`` fields (and other secret-looking values) are
    registered for scrubbing first; the error carries no chained pydantic error, whose text
    would quote the offending input (``input_value='sk-…'``).
    """
    secret_fields = model.secret_fields() if issubclass(model, ComponentOptions) else frozenset()
    collect_secrets(options, secret_fields)
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        message = f"invalid options: {format_validation_error(exc, where, secret_fields)}"
    raise ConfigError(message)


def validate_partial_options(
    model: type[BaseModel], options: Mapping[str, Any], *, where: str
) -> BaseModel:
    """Validate the given ``options`` only: fields they leave out may be required (another part
    of the program supplies them later). Unknown keys and bad values are still errors."""
    from pydantic import create_model

    relaxed = {
        name: (field.annotation, Field(default=None))
        for name, field in model.model_fields.items()
        if field.is_required() and name not in options
    }
    partial = create_model(f"{model.__name__}Given", __base__=model, **relaxed) if relaxed else model
    return validate_options(partial, options, where=where)


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
