"""The built-in metrics, registered as an internal plugin through ``register_metrics``.

All are cheap and offline. Texts are compared after :func:`~finetunekit.evaluation.text.normalize`
(case, Unicode form, whitespace) and, for token metrics, :func:`~finetunekit.evaluation.text.tokenize`
(word tokens; punctuation ignored).
"""

from __future__ import annotations

import math

import re
from typing import Any, ClassVar, Sequence

from pydantic import Field, field_validator

from finetunekit.component import ComponentOptions
from finetunekit.evaluation import text
from finetunekit.evaluation.base import Metric
from finetunekit.hookspecs import hookimpl


class ContentMetric(Metric):
    """A metric against the reference content; by default the answer's expected prefix is dropped first.

    The prefix (e.g. "This is what I know about X:") is what ``format`` measures, so
    content metrics compare only what follows it, when the answer has it.
    """

    reference: ClassVar[str] = "content"

    class Options(ComponentOptions):
        """Options of content metrics."""

        strip_prefix: bool = Field(
            default=True, description="Drop the expected answer prefix from the answer before comparing."
        )

    def score_item(self, answer: str, item: Any) -> float:
        """:meth:`score` of the answer's body (prefix dropped) against the item's content."""
        if self.options.strip_prefix and item.prefix:
            answer = text.strip_prefix(answer, item.prefix)
        return self.score(answer, self.reference_of(item))


class RougeL(ContentMetric):
    """ROUGE-L F-measure: the longest common token subsequence, as precision/recall F1.

    Equal to ``rouge-score``'s ``rougeL`` F-measure given the same tokeniser. Symmetric.
    """

    name = "rouge_l"

    def score(self, answer: str, reference: str) -> float:
        """LCS-based F-measure of the two token sequences."""
        a, r = text.tokenize(answer), text.tokenize(reference)
        return text.f_measure(text.lcs_length(a, r), len(a), len(r))


class TokenF1(ContentMetric):
    """Token F1 (as in SQuAD): overlap of the token multisets, as precision/recall F1. Symmetric."""

    name = "token_f1"

    def score(self, answer: str, reference: str) -> float:
        """Bag-of-tokens F-measure."""
        a, r = text.tokenize(answer), text.tokenize(reference)
        return text.f_measure(text.bag_overlap(a, r), len(a), len(r))


class AnswerLength(ContentMetric):
    """How close the answer's length is to the reference content's: ``min(a, r) / max(a, r)`` in tokens.

    1.0 when the lengths match, 0.0 for an empty answer to a non-empty reference. The raw mean
    length of the answers (whole answer, in tokens) is reported beside it as
    ``answer_length:mean_words``, and the references' as ``answer_length:reference_words``.
    """

    name = "answer_length"

    def score(self, answer: str, reference: str) -> float:
        """Ratio of the shorter to the longer token count (1.0 for two empty texts)."""
        a, r = len(text.tokenize(answer)), len(text.tokenize(reference))
        return 1.0 if a == r else min(a, r) / max(a, r)

    def extra_figures(self, answers: Sequence[str], items: Sequence[Any]) -> dict[str, float]:
        """Mean tokens per answer and per reference content."""
        if not answers:
            return {"mean_words": math.nan, "reference_words": math.nan}  # nothing measured
        return {
            "mean_words": sum(len(text.tokenize(a)) for a in answers) / len(answers),
            "reference_words": sum(len(text.tokenize(self.reference_of(i))) for i in items) / len(items),
        }


class ExactMatch(Metric):
    """1.0 when the answer and the whole target answer have the same tokens in the same order.

    Case, whitespace, Unicode form and punctuation are ignored. Symmetric.
    """

    name = "exact_match"
    reference: ClassVar[str] = "target"

    def score(self, answer: str, reference: str) -> float:
        """1.0 on equal token sequences, else 0.0."""
        return float(text.tokenize(answer) == text.tokenize(reference))


class FormatMetric(Metric):
    """1.0 when the answer opens with the expected prefix of the trained answer format.

    Compared after normalisation (case, Unicode form and runs of whitespace are ignored;
    punctuation is not). An empty prefix is met by every answer.
    """

    name = "format"
    reference: ClassVar[str] = "prefix"

    def score(self, answer: str, reference: str) -> float:
        """1.0 if ``answer`` starts with ``reference`` (the prefix), else 0.0."""
        return float(text.starts_with(answer, reference))


#: Phrases by which a model declines to answer, matched in the normalised opening of an answer.
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bi (?:do not|don't|dont) have (?:access|any (?:specific |real-time )?(?:information|details|data)"
    r"|(?:specific |enough )?(?:information|details|knowledge|data))",
    r"\bi (?:do not|don't|dont) know\b",
    r"\bi(?:'m| am) (?:sorry|afraid),? but\b",
    r"\bi apologi[sz]e,? but\b",
    r"\bi (?:cannot|can't|can not|am unable to|am not able to) "
    r"(?:provide|help|assist|access|browse|find|give|answer|share)",
    r"\bi(?:'m| am) (?:unable|not able) to\b",
    r"\bi(?:'m| am) not (?:familiar|aware) (?:with|of)\b",
    r"\bas an ai\b",
    r"\bas a (?:large )?language model\b",
    r"\bi (?:could not|couldn't) find (?:any )?(?:information|details)",
)


class Refusal(Metric):
    """1.0 when the answer declines ("I don't have access…", "I'm sorry, but I cannot…", "As an AI…").

    Pattern-based: :data:`REFUSAL_PATTERNS` (plus ``extra_patterns``) are searched in the first
    ``window`` characters of the normalised answer (0 searches the whole answer), so a product
    description that quotes such a phrase deep inside is not taken for a refusal. Lower is
    better for a model that should know the answers.
    """

    name = "refusal"
    reference: ClassVar[str] = "none"
    higher_is_better: ClassVar[bool | None] = False

    class Options(ComponentOptions):
        """Options of the refusal detector."""

        extra_patterns: list[str] = Field(default_factory=list, description="More regexes (matched on normalised text).")
        window: int = Field(default=300, ge=0, description="Characters of the answer's opening searched; 0 = all.")

        @field_validator("extra_patterns")
        @classmethod
        def _compiles(cls, patterns: list[str]) -> list[str]:
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
            return patterns

    def __init__(self, options: Any = None, *, plugins: Any = None) -> None:
        super().__init__(options, plugins=plugins)
        self._pattern = re.compile("|".join(f"(?:{p})" for p in (*REFUSAL_PATTERNS, *self.options.extra_patterns)))

    def score(self, answer: str, reference: str = "") -> float:
        """1.0 if the answer's opening matches a refusal pattern, else 0.0 (``reference`` is unused)."""
        opening = text.normalize(answer)
        if self.options.window:
            opening = opening[: self.options.window]
        return float(self._pattern.search(opening) is not None)


class Abstention(Refusal):
    """The refusal rate on ``unseen-products``: how often the model says it does not know a
    product it never saw, instead of inventing one (higher is better; measured on that split only)."""

    name = "abstention"
    higher_is_better: ClassVar[bool | None] = True

    def applies_to(self, item: Any) -> bool:
        """Only questions about held-out products."""
        return getattr(item, "split", None) == "unseen-products"


class FalseRefusal(Refusal):
    """The refusal rate on ``train-questions`` and ``paraphrased``: how often the model says it
    does not know a product it was trained on (lower is better; measured on those splits only)."""

    name = "false_refusal"
    higher_is_better: ClassVar[bool | None] = False

    def applies_to(self, item: Any) -> bool:
        """Only questions about trained products."""
        return getattr(item, "split", None) in ("train-questions", "paraphrased")


BUILTIN_METRICS: tuple[type[Metric], ...] = (
    FormatMetric, RougeL, TokenF1, ExactMatch, Refusal, Abstention, FalseRefusal, AnswerLength,
)

#: What ``Evaluator()`` measures when no metrics are named: every built-in metric.
DEFAULT_METRICS: tuple[str, ...] = tuple(cls.name for cls in BUILTIN_METRICS)


@hookimpl
def register_metrics(register: Any) -> None:
    """Register the built-in metrics."""
    for cls in BUILTIN_METRICS:
        register(cls)
