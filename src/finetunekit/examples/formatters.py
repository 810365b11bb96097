"""Response formatters: how a row becomes the target answer of a chat example."""

from __future__ import annotations

from typing import Any, Mapping

import pluggy

from finetunekit.data.rows import ROW_ID_FIELD
from finetunekit.examples.templating import SafeTemplate


class ResponseFormatter:
    """Formats the answer for a row from a safe ``{field}`` template.

    For answers a template cannot express, subclass and override :meth:`format` (and
    :meth:`prefix`, the fixed opening the ``format`` metric checks; without it that metric is
    not measured), then register the subclass (with a ``name``) through the
    ``register_response_formatters`` hook.
    """

    name: str = "template"

    def __init__(self, template: str | None = None, *, name: str | None = None) -> None:
        self.template = SafeTemplate(template) if template is not None else None
        if name is not None:
            self.name = name

    @property
    def fields(self) -> tuple[str, ...]:
        """The row fields the answer uses (those of the template; none without one)."""
        return self.template.fields if self.template is not None else ()

    def format(self, row: Mapping[str, Any]) -> str:
        """The target answer for ``row``."""
        if self.template is None:
            raise TypeError(f"{type(self).__name__} has no template: pass one, or override format()")
        return self.template.render(row, row_id=row.get(ROW_ID_FIELD))

    def prefix(self, row: Mapping[str, Any]) -> str | None:
        """The fixed opening of the answer for ``row`` (what the ``format`` metric checks).

        ``None`` (the metric is not measured) when the template does not make the answer:
        no template, or a subclass that overrides :meth:`format` but not this method.
        """
        if self.template is None or type(self).format is not ResponseFormatter.format:
            return None
        return self.template.prefix(row, row_id=row.get(ROW_ID_FIELD))

    def __repr__(self) -> str:
        text = self.template.text if self.template is not None else None
        return f"{type(self).__name__}({text!r}, name={self.name!r})"


def resolve_formatter(
    spec: str | ResponseFormatter | type[ResponseFormatter], *, plugins: pluggy.PluginManager | None = None
) -> ResponseFormatter:
    """A formatter from an instance, a class, a registered name, or a template string (has ``{``)."""
    if isinstance(spec, ResponseFormatter):
        return spec
    if isinstance(spec, type) and issubclass(spec, ResponseFormatter):
        return spec()
    if not isinstance(spec, str):
        raise TypeError(
            f"a formatter must be a ResponseFormatter, a registered name or a template string, got {spec!r}"
        )
    if "{" in spec:
        return ResponseFormatter(spec)
    from finetunekit.registry import registry_for

    found = registry_for("register_response_formatters", plugins).get(spec)
    return found() if isinstance(found, type) else found
