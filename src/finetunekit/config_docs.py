"""The configuration reference table, generated from ``PipelineConfig``'s field descriptions."""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Iterator

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from finetunekit.config import PipelineConfig


def config_fields(model: type[BaseModel] = PipelineConfig, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """``(dotted path, default, description)`` for every field, sections expanded in place."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = _section(field.annotation)
        if annotation is not None:
            default = _default(field)
            yield path, default if len(default) <= 80 else "(section)", field.description or ""
            yield from config_fields(annotation, prefix=f"{path}.")
            continue
        yield path, _default(field), field.description or ""


def _section(annotation: Any) -> type[BaseModel] | None:
    """The section model of a field typed ``Section`` or ``Section | None``, else None."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
    return models[0] if len(models) == 1 and all(a is type(None) for a in options if a is not models[0]) else None


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return json.dumps(value)


def fields_markdown(model: type[BaseModel] = PipelineConfig, heading: str = "field") -> str:
    """A Markdown table of every field of ``model``: path, default and description."""
    lines = [f"| {heading} | default | description |", "| --- | --- | --- |"]
    for path, default, description in config_fields(model):
        lines.append(f"| `{path}` | `{default}` | {description} |")
    return "\n".join(lines) + "\n"


def config_reference_markdown() -> str:
    """The configuration reference: every ``PipelineConfig`` field."""
    return fields_markdown(PipelineConfig)


def component_options_markdown(hook_name: str, name: str) -> str:
    """The options table of the registered component ``name`` (e.g. the "local" trainer)."""
    from finetunekit.registry import registry_for

    return fields_markdown(registry_for(hook_name).get(name).Options, heading="option")
