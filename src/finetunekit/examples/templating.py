"""Safe string templates: ``{field}`` placeholders only, rendered without ``str.format``.

Attribute and index access (``{title.__class__}``, ``{x[0]}``), positional fields (``{}``,
``{0}``), conversions (``{x!r}``) and format specs (``{x:>10}``, which may nest fields) are
rejected when the template is created, so a template can never reach past a row's values.
"""

from __future__ import annotations

import math
import numbers
import string
from typing import Any, Mapping

from finetunekit.errors import TemplateError

_FORMATTER = string.Formatter()


class SafeTemplate:
    """A validated template whose placeholders are plain field names."""

    __slots__ = ("text", "_parts", "fields")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TemplateError(f"a template must be a string, got {type(text).__name__}")
        if not text.strip():
            raise TemplateError("a template must not be empty")
        self.text = text
        self._parts = _parse(text)
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(f for _, f in self._parts if f))

    def render(self, row: Mapping[str, Any], *, row_id: object = None) -> str:
        """Fill the placeholders from ``row``; a missing field names the row and the field."""
        return self._render(self._parts, row, row_id)

    def prefix(self, row: Mapping[str, Any], *, row_id: object = None) -> str:
        """The rendered text before the template's last placeholder, right-stripped."""
        last = max((i for i, (_, field) in enumerate(self._parts) if field), default=None)
        if last is None:
            return self.render(row, row_id=row_id).rstrip()
        head = [*self._parts[:last], (self._parts[last][0], None)]
        return self._render(head, row, row_id).rstrip()

    def _render(self, parts: list[tuple[str, str | None]], row: Mapping[str, Any], row_id: object) -> str:
        out: list[str] = []
        for literal, field in parts:
            out.append(literal)
            if field is None:
                continue
            if field not in row or is_missing(row[field]):
                where = f"row {row_id!r}" if row_id is not None else "row"
                raise TemplateError(
                    f"{where} has no value for field {field!r} used by template {self.text!r}; "
                    f"the row's fields are: {', '.join(sorted(map(str, row))) or 'none'}"
                )
            value = row[field]
            if isinstance(value, (Mapping, list, tuple, set, bytes)):
                where = f"row {row_id!r}" if row_id is not None else "row"
                raise TemplateError(
                    f"{where}: field {field!r} used by template {self.text!r} holds "
                    f"{'an object' if isinstance(value, Mapping) else 'an array'}; expected text or a number "
                    "(map a text column with columns=, or load with on_error=\"skip\" to skip such rows)"
                )
            out.append(str(value))
        return "".join(out)

    def __repr__(self) -> str:
        return f"SafeTemplate({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SafeTemplate) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def is_missing(value: Any) -> bool:
    """True for ``None`` and the missing-value markers of pandas/numpy (NaN, ``pd.NA``, ``NaT``).

    Rows that come from a DataFrame carry NaN for an empty cell; rendering it would put the
    text "nan" into a training example.
    """
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return math.isnan(value)  # float, numpy floating scalars
    return False


def _parse(text: str) -> list[tuple[str, str | None]]:
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise TemplateError(f"template {text!r} is malformed: {exc} (use '{{{{' for a literal brace)") from exc
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None))
            continue
        if field == "" or field.isdigit():
            raise TemplateError(
                f"template {text!r} uses a positional placeholder {{{field}}}; name the field, e.g. {{title}}"
            )
        if not field.isidentifier():
            raise TemplateError(
                f"template {text!r} uses {{{field}}}: placeholders must be plain field names, "
                "without attribute or index access"
            )
        if conversion or spec:
            raise TemplateError(
                f"template {text!r} uses a conversion or format spec on {{{field}}}; "
                "only plain {field} placeholders are allowed"
            )
        parts.append((literal, field))
    return parts
