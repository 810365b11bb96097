"""Helpers for the evaluation tests: small datasets, an ExampleSet-shaped input, stub chat models.

The ExampleSet here is built with the real PromptGenerator and ResponseFormatter into the
interface ``build_examples`` returns (``.examples`` and ``.metadata``), so the tests do not
depend on the examples module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finetunekit.examples.formatters import ResponseFormatter
from finetunekit.chat import ChatModel
from finetunekit.examples.prompts import PromptGenerator

FORMATTER = ResponseFormatter("This is what I know about {title} from Amazon: {content}")
PARAPHRASED = "amazon-product-paraphrased"
REFUSAL = "I'm sorry, but I cannot help with that."  # 9 tokens: i m sorry but i cannot help with that


def words(n: int, start: int = 0) -> str:
    """``n`` distinct made-up words (``w0 w1 …``), sharing no token with REFUSAL or the prefix."""
    return " ".join(f"w{k}" for k in range(start, start + n))


def product_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train rows, test rows) with hand-chosen content lengths in tokens."""
    train = [
        {"_row_id": "a", "title": "Gadget Alpha", "content": words(9)},
        {"_row_id": "b", "title": "Gadget Bravo", "content": words(18, 100)},
        {"_row_id": "c", "title": "Gadget Charlie", "content": words(3, 200)},
        {"_row_id": "d", "title": "Gadget Delta", "content": ""},
    ]
    test = [
        {"_row_id": "e", "title": "Gadget Echo", "content": words(27, 300)},
        {"_row_id": "f", "title": "Gadget Foxtrot", "content": words(9, 400)},
    ]
    return train, test


@dataclass
class ExampleSetLike:
    """What ``build_examples`` returns, reduced to the interface the eval sets use."""

    examples: list[dict[str, Any]] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)


def make_examples(rows: list[dict[str, Any]], *, seed: int = 0, system: str | None = None,
                  templates: str = "amazon-product", plugins: Any = None) -> ExampleSetLike:
    """One training example per row, as ``build_examples(rows, PromptGenerator(...), FORMATTER)``."""
    out = ExampleSetLike()
    for question, row in zip(PromptGenerator(templates, seed=seed, plugins=plugins).questions(rows), rows):
        head = [{"role": "system", "content": system}] if system else []
        out.examples.append({"messages": [*head, {"role": "user", "content": question.text},
                                          {"role": "assistant", "content": FORMATTER.format(row)}]})
        out.metadata.append({"row_id": question.row_id, "template": question.template})
    return out


class KnowingModel(ChatModel):
    """Answers from a table of products: finds the product's title in the question, gives its target."""

    name = "knowing-stub"

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = sorted(rows, key=lambda r: -len(r["title"]))
        self.calls = 0

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        self.calls += 1
        answers = []
        for conversation in conversations:
            question = conversation[-1]["content"]
            row = next((r for r in self.rows if r["title"] in question), None)
            answers.append(FORMATTER.format(row) if row else "I don't know.")
        return answers


class FixedAnswerModel(ChatModel):
    """Gives the same answer to every question (a refusal by default)."""

    name = "fixed-stub"

    def __init__(self, answer: str = REFUSAL) -> None:
        super().__init__()
        self.fixed = answer
        self.calls = 0

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        self.calls += 1
        return [self.fixed] * len(conversations)


def amazon_eval_sets(*args: Any, **kwargs: Any) -> list[Any]:
    """``build_eval_sets`` with the Amazon formatter and paraphrase templates unless given."""
    from finetunekit.evaluation.evalsets import build_eval_sets

    kwargs.setdefault("formatter", FORMATTER)
    kwargs.setdefault("paraphrase_prompts", PARAPHRASED)
    return build_eval_sets(*args, **kwargs)
