"""The Metric interface."""

from __future__ import annotations

import abc
from typing import Sequence

from finetunekit.component import Component


class Metric(Component, abc.ABC):
    """Scores one answer against its reference, in [0, 1], and aggregates over a set.

    Subclasses set ``name`` and ``Options`` and implement :meth:`score`.
    """

    @abc.abstractmethod
    def score(self, answer: str, reference: str) -> float:
        """The score of ``answer`` against ``reference``, in [0, 1]."""

    def aggregate(self, scores: Sequence[float]) -> float:
        """The set's figure: the mean by default (0.0 for an empty set)."""
        return sum(scores) / len(scores) if scores else 0.0
