"""A model's confidence in its own answers: how well it separates known from unknown products
(AUROC), and the abstention threshold calibrated on held-out products.

A confidence score is a number per answer, higher meaning surer (the local chat model's is the
mean log-probability of the answer's first tokens). Calibration sees scores of answers about
products the model was trained on (``known``) and about held-out products it never saw
(``unknown``, a calibration split that is never the eval split) and picks the threshold below
which the model should say it does not know.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence


def auroc(known: Sequence[float], unknown: Sequence[float]) -> float:
    """The probability that a random known answer scores higher than a random unknown one
    (ties count half): 1.0 separates perfectly, 0.5 not at all. NaN when either side is empty."""
    if not known or not unknown:
        return math.nan
    wins = sum(1.0 if k > u else 0.5 if k == u else 0.0 for k in known for u in unknown)
    return wins / (len(known) * len(unknown))


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and what it does on the calibration answers."""

    threshold: float
    abstention: float  #: share of unknown answers below the threshold (refused)
    false_refusal: float  #: share of known answers below the threshold (wrongly refused)
    auroc: float
    n_known: int
    n_unknown: int
    rule: str

    def to_dict(self) -> dict[str, float | int | str]:
        """The calibration as plain data (for ``calibration.json``)."""
        return asdict(self)


def calibrate_threshold(
    known: Sequence[float], unknown: Sequence[float], *, max_false_refusal: float = 0.02
) -> Calibration:
    """The threshold that refuses as many unknown answers as possible while refusing at most
    ``max_false_refusal`` of the known ones (on the calibration answers).

    Candidate thresholds lie midway between consecutive distinct scores; of those that do
    equally well, the middle of their range is taken. Answers scoring below it are refused.
    """
    if not known or not unknown:
        raise ValueError("calibration needs confidence scores of both known and unknown products")
    if not 0 <= max_false_refusal < 1:
        raise ValueError(f"max_false_refusal must be in [0, 1), got {max_false_refusal!r}")
    values = sorted(set(known) | set(unknown))
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1.0]
    scored: list[tuple[float, float, float]] = []  # (abstention, -false_refusal, threshold)
    for threshold in candidates:
        false_refusal = sum(s < threshold for s in known) / len(known)
        if false_refusal <= max_false_refusal:
            scored.append((sum(s < threshold for s in unknown) / len(unknown), -false_refusal, threshold))
    best = max(scored)[:2]  # the lowest candidate refuses nothing, so there is one
    tied = sorted(threshold for *key, threshold in scored if tuple(key) == best)
    # of the thresholds that do equally well, the middle one leaves most margin on both sides
    threshold = (tied[0] + tied[-1]) / 2
    abstention, minus_false = best
    return Calibration(
        threshold=threshold, abstention=abstention, false_refusal=-minus_false, auroc=auroc(known, unknown),
        n_known=len(known), n_unknown=len(unknown), rule=f"most unknown refused with <= {max_false_refusal:g} known refused",
    )
