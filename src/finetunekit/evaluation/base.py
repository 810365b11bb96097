"""The Metric interface: what a metric plugin implements."""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, Sequence

from finetunekit.component import Component

#: What a metric may compare an answer with; see :meth:`Metric.reference_of`.
REFERENCE_KINDS = ("content", "target", "prefix", "none")


class Metric(Component, abc.ABC):
    """Scores one answer against its reference, in [0, 1], and aggregates over a set.

    Subclasses set ``name`` (and ``Options`` if they take any) and implement :meth:`score`.
    ``reference`` says which part of an eval item ``score`` receives as its reference:

    - ``"content"``: the knowledge itself (e.g. a product description);
    - ``"target"``: the whole formatted answer the model was trained to give;
    - ``"prefix"``: the fixed opening of that answer (e.g. ``"This is what I know about X:"``);
    - ``"none"``: nothing (``score`` gets ``""``), for metrics of the answer alone.

    ``higher_is_better`` is shown in reports (``False`` for e.g. a refusal rate).
    """

    reference: ClassVar[str] = "content"
    higher_is_better: ClassVar[bool | None] = True

    @abc.abstractmethod
    def score(self, answer: str, reference: str) -> float:
        """The score of ``answer`` against ``reference``, in [0, 1]."""

    def aggregate(self, scores: Sequence[float]) -> float:
        """The set's figure: the mean by default; NaN for an empty set (nothing was measured,
        which reports show as a blank, never as a score of 0). NaN scores (not measurable for
        that item) are left out."""
        measured = [s for s in scores if not math.isnan(s)]
        return sum(measured) / len(measured) if measured else math.nan

    def reference_of(self, item: Any) -> str | None:
        """The text of ``item`` (an ``EvalItem``) that :meth:`score` compares with."""
        if self.reference == "none":
            return ""
        if self.reference not in REFERENCE_KINDS:
            raise ValueError(
                f"metric {self.name!r} declares reference={self.reference!r}; expected one of {REFERENCE_KINDS}"
            )
        value = getattr(item, self.reference)
        return None if value is None else str(value)

    def applies_to(self, item: Any) -> bool:
        """Whether this metric measures ``item`` at all (default: every item). A metric of one
        split only (``abstention``: unseen products) says no to the others; its summary has no
        row for a split where it applies to nothing."""
        return True

    def measures(self, item: Any) -> bool:
        """Whether ``item`` gets a score: the metric applies to it and it has the reference the
        metric compares with (e.g. a formatter without a fixed opening gives no ``prefix``)."""
        return self.applies_to(item) and (self.reference == "none" or self.reference_of(item) is not None)

    def score_item(self, answer: str, item: Any) -> float:
        """The score of ``answer`` to ``item``: :meth:`score` against :meth:`reference_of`
        (NaN, not measured, when the metric does not :meth:`measure <measures>` the item)."""
        return self.score(answer, self.reference_of(item) or "") if self.measures(item) else math.nan

    def extra_figures(self, answers: Sequence[str], items: Sequence[Any]) -> dict[str, float]:
        """Further set-level figures to report beside the aggregate, as ``{key: value}``.

        Each becomes a summary row named ``"<metric>:<key>"``. None by default.
        """
        return {}
