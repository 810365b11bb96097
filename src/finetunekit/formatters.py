"""Response formatters: how a row becomes the target answer of a chat example."""

from __future__ import annotations

from typing import Any, Mapping

import pluggy

from finetunekit.hookspecs import hookimpl
from finetunekit.prompts import ROW_ID_FIELD
from finetunekit.templating import SafeTemplate

AMAZON_RESPONSE = "This is what I know about {title} from Amazon: {content}"


class ResponseFormatter:
    """Formats the answer for a row from a safe ``{field}`` template.

    Subclass and override :meth:`format` for answers a template cannot express; register
    the subclass (with a ``name``) through the ``register_response_formatters`` hook.
    """

    name: str = "template"

    def __init__(self, template: str = AMAZON_RESPONSE, *, name: str | None = None) -> None:
        self.template = SafeTemplate(template)
        if name is not None:
            self.name = name

    @property
    def fields(self) -> tuple[str, ...]:
        """The row fields the answer uses."""
        return self.template.fields

    def format(self, row: Mapping[str, Any]) -> str:
        """The target answer for ``row``."""
        return self.template.render(row, row_id=row.get(ROW_ID_FIELD))

    def prefix(self, row: Mapping[str, Any]) -> str:
        """The fixed opening of the answer for ``row`` (what the ``format`` metric checks)."""
        return self.template.prefix(row, row_id=row.get(ROW_ID_FIELD))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.template.text!r}, name={self.name!r})"


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


@hookimpl
def register_response_formatters(register: Any) -> None:
    """Built-in formatters."""
    register(ResponseFormatter(AMAZON_RESPONSE, name="amazon-product"))
