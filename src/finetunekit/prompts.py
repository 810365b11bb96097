"""Question templates (``PromptTemplateSet``) and the seeded ``PromptGenerator``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pluggy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from finetunekit.errors import TemplateError
from finetunekit.hookspecs import hookimpl
from finetunekit.templating import SafeTemplate

#: The key under which every Dataset row carries its stable source id.
ROW_ID_FIELD = "_row_id"


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

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field any template of the set uses."""
        return tuple(dict.fromkeys(f for t in self.templates for f in SafeTemplate(t).fields))


@dataclass(frozen=True)
class Question:
    """One generated question: the row it came from and the template that made it."""

    row_id: Any
    template: str
    text: str


class PromptGenerator:
    """Turns rows into question texts from a named template set, deterministically per seed."""

    def __init__(
        self,
        templates: str | PromptTemplateSet | Sequence[str] = "amazon-product",
        seed: int = 0,
        *,
        plugins: pluggy.PluginManager | None = None,
    ) -> None:
        self.template_set = resolve_template_set(templates, plugins=plugins)
        self.seed = seed
        self._templates = [SafeTemplate(t) for t in self.template_set.templates]

    def questions(self, rows: Iterable[Mapping[str, Any]]) -> list[Question]:
        """One question per row, its template picked by a generator seeded with ``seed``."""
        rng = random.Random(self.seed)
        out = []
        for index, row in enumerate(rows):
            template = rng.choice(self._templates)
            out.append(self._question(template, row, index))
        return out

    def expand(self, rows: Iterable[Mapping[str, Any]]) -> list[Question]:
        """Every template applied to every row (rows outer, templates inner)."""
        return [
            self._question(template, row, index)
            for index, row in enumerate(rows)
            for template in self._templates
        ]

    def generate(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """The question texts of :meth:`questions`."""
        return [q.text for q in self.questions(rows)]

    @staticmethod
    def _question(template: SafeTemplate, row: Mapping[str, Any], index: int) -> Question:
        row_id = row.get(ROW_ID_FIELD, index)
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


AMAZON_PRODUCT = PromptTemplateSet(
    name="amazon-product",
    description="Questions about a catalogue product, used for training.",
    templates=(
        "Please describe the product {title} from Amazon.",
        "What can you tell me about the product {title} from Amazon?",
        "Tell me about {title} from Amazon.",
        "What is the product {title} from Amazon?",
        "Give me a description of {title} from Amazon.",
    ),
)

AMAZON_PRODUCT_PARAPHRASED = PromptTemplateSet(
    name="amazon-product-paraphrased",
    description="Other phrasings of the same questions, never used in training (tests generalisation).",
    templates=(
        "I'm looking at {title} on Amazon. What is it?",
        "Could you explain what {title}, sold on Amazon, is?",
        "Describe the Amazon listing {title} for me.",
        "What do you know about the item {title} on Amazon?",
        "Summarise the Amazon product called {title}.",
        "Share some details about {title} from Amazon.",
    ),
)


@hookimpl
def register_prompt_templates(register: Any) -> None:
    """Built-in template sets."""
    register(AMAZON_PRODUCT)
    register(AMAZON_PRODUCT_PARAPHRASED)
