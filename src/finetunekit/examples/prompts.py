"""Question templates (``PromptTemplateSet``) and the seeded ``PromptGenerator``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pluggy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from finetunekit.errors import TemplateError
from finetunekit.examples.templating import SafeTemplate

from finetunekit.data.rows import ROW_ID_FIELD


class PromptTemplateSet(BaseModel):
    """A named set of question templates, validated when it is created."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Name used to select the set.")
    templates: tuple[str, ...] = Field(description="Question templates with {field} placeholders.")
    description: str | None = Field(default=None, description="What the set is for.")

    @field_validator("templates", mode="before")
    @classmethod
    def _check_templates(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            raise TemplateError("templates must be a list of strings, not one string")
        templates = tuple(value)
        if not templates:
            raise TemplateError("a template set needs at least one template")
        for text in templates:
            SafeTemplate(text)  # raises TemplateError on an unsafe or malformed template
        if len(set(templates)) != len(templates):
            raise TemplateError("a template set must not repeat a template")
        return templates

    def __init__(self, **data: Any) -> None:
        # pydantic calls a custom __init__ from model_validate too, so this covers both paths.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            _raise_template_error(exc, data.get("name"))
            raise

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> PromptTemplateSet:  # type: ignore[override]
        """Validate ``obj``; an unsafe or malformed template raises :class:`TemplateError`."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            _raise_template_error(exc, obj.get("name") if isinstance(obj, Mapping) else None)
            raise

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field any template of the set uses."""
        return tuple(dict.fromkeys(f for t in self.templates for f in SafeTemplate(t).fields))


def _raise_template_error(exc: ValidationError, name: Any) -> None:
    """Re-raise the :class:`TemplateError` pydantic wrapped (it wraps every ValueError)."""
    for error in exc.errors():
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, TemplateError):
            prefix = f"prompt template set {name!r}: "
            message = str(original)
            raise TemplateError(message if message.startswith(prefix) else prefix + message) from exc


@dataclass(frozen=True)
class Question:
    """One generated question: the row it came from and the template that made it."""

    row_id: Any
    template: str
    text: str


class PromptGenerator:
    """Turns rows into question texts from a named template set, deterministically per seed.

    The template for a row is picked from a hash of ``(seed, row id)`` (the row's
    ``_row_id``, else its position), so a row gets the same question whatever other rows
    are around it: sampling, splitting or skipping rows never changes another row's question.
    """

    def __init__(
        self,
        templates: str | PromptTemplateSet | Sequence[str],
        seed: int = 0,
        *,
        plugins: pluggy.PluginManager | None = None,
    ) -> None:
        self.template_set = resolve_template_set(templates, plugins=plugins)
        self.seed = seed
        self._templates = [SafeTemplate(t) for t in self.template_set.templates]

    def question(self, row: Mapping[str, Any], index: int = 0) -> Question:
        """The question for one row; ``index`` (its position) stands in for a missing row id."""
        row_id = row.get(ROW_ID_FIELD, index)
        return _render(self._templates[self._first_index(row_id)], row, row_id)

    def _first_index(self, row_id: Any) -> int:
        digest = hashlib.blake2b(f"{self.seed}\x1f{row_id!r}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % len(self._templates)

    def all_questions(self, row: Mapping[str, Any], index: int = 0) -> list[Question]:
        """One question per template of the set for one row, in the set's order."""
        row_id = row.get(ROW_ID_FIELD, index)
        return [_render(template, row, row_id) for template in self._templates]

    def questions_for(self, row: Mapping[str, Any], index: int = 0, k: int | str = 1) -> list[Question]:
        """``k`` questions for one row, each from a different template (``"all"``: every template,
        in the set's order). Which ones is a seeded hash of the row id and each template, so a
        row's questions depend on neither the other rows nor ``k`` beyond their number (the
        ``k`` chosen are the first ``k`` of one ranking); ``k=1`` is :meth:`question`."""
        if k == "all":
            return self.all_questions(row, index)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(self._templates):
            raise TemplateError(
                f"questions_per_row must be 'all' or 1..{len(self._templates)} (the templates of "
                f"{self.template_set.name!r}), got {k!r}"
            )
        if k == 1:
            return [self.question(row, index)]
        row_id = row.get(ROW_ID_FIELD, index)
        first = self._first_index(row_id)
        rest = sorted(
            (i for i in range(len(self._templates)) if i != first),
            key=lambda i: hashlib.blake2b(f"{self.seed}\x1f{row_id!r}\x1f{i}".encode(), digest_size=8).digest(),
        )
        return [_render(self._templates[i], row, row_id) for i in [first, *rest][:k]]

    def questions(self, rows: Iterable[Mapping[str, Any]]) -> list[Question]:
        """One question per row (see :meth:`question`)."""
        return [self.question(row, index) for index, row in enumerate(rows)]

    def expand(self, rows: Iterable[Mapping[str, Any]]) -> list[Question]:
        """Every template applied to every row (rows outer, templates inner)."""
        return [q for index, row in enumerate(rows) for q in self.all_questions(row, index)]

    def generate(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """The question texts of :meth:`questions`."""
        return [q.text for q in self.questions(rows)]

    def __repr__(self) -> str:
        return f"PromptGenerator(templates={self.template_set.name!r}, seed={self.seed!r})"


def _render(template: SafeTemplate, row: Mapping[str, Any], row_id: Any) -> Question:
    return Question(row_id=row_id, template=template.text, text=template.render(row, row_id=row_id))


def resolve_template_set(
    templates: str | PromptTemplateSet | Sequence[str], *, plugins: pluggy.PluginManager | None = None
) -> PromptTemplateSet:
    """A template set from its registered name, itself, or a list of template strings."""
    if isinstance(templates, PromptTemplateSet):
        return templates
    if isinstance(templates, str):
        from finetunekit.registry import registry_for

        return registry_for("register_prompt_templates", plugins).get(templates)
    return PromptTemplateSet(name="custom", templates=tuple(templates))
