"""Abstention: the abstention and false_refusal metrics on hand-made answers, AUROC and the
calibrated threshold on hand-made scores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finetunekit.chat import DEFAULT_REFUSAL
from finetunekit.evaluation.confidence import auroc, calibrate_threshold
from finetunekit.registry import get_metric


@dataclass
class Item:
    split: str


KNOWN_ANSWER = "This is what I know about Blue Kettle from Amazon: a kettle."


@pytest.mark.parametrize(
    ("name", "split", "answer", "expected"),
    [
        ("abstention", "unseen-products", DEFAULT_REFUSAL, 1.0),
        ("abstention", "unseen-products", KNOWN_ANSWER, 0.0),
        ("abstention", "unseen-products", "I'm sorry, but I cannot describe that.", 1.0),
        ("abstention", "train-questions", DEFAULT_REFUSAL, math.nan),  # not measured there
        ("false_refusal", "train-questions", DEFAULT_REFUSAL, 1.0),
        ("false_refusal", "paraphrased", KNOWN_ANSWER, 0.0),
        ("false_refusal", "unseen-products", DEFAULT_REFUSAL, math.nan),
    ],
)
def test_abstention_and_false_refusal_on_hand_made_answers(pm, name, split, answer, expected):
    value = get_metric(name, plugins=pm).score_item(answer, Item(split))
    assert value == expected or (math.isnan(expected) and math.isnan(value))


def test_a_refusal_deep_inside_an_answer_is_not_an_abstention(pm):
    metric = get_metric("abstention", plugins=pm, window=40)
    answer = KNOWN_ANSWER + " " + "It boils water. " * 5 + "I don't know its price."
    assert metric.score_item(answer, Item("unseen-products")) == 0.0


def test_auroc_by_hand():
    assert auroc([3.0, 2.0], [1.0, 0.0]) == 1.0
    assert auroc([0.0], [1.0]) == 0.0
    assert auroc([1.0, 2.0], [1.0, 0.0]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert math.isnan(auroc([], [1.0]))


def test_the_threshold_refuses_most_unknown_within_the_false_refusal_budget():
    known = [-0.1, -0.2, -0.3, -0.9]  # one unsure known answer
    unknown = [-1.5, -1.2, -0.8, -0.25]
    strict = calibrate_threshold(known, unknown, max_false_refusal=0.0)
    assert strict.false_refusal == 0.0 and strict.abstention == 0.5  # below -0.9: only -1.5 and -1.2
    assert -1.2 < strict.threshold < -0.9
    lenient = calibrate_threshold(known, unknown, max_false_refusal=0.25)
    assert lenient.false_refusal == 0.25 and lenient.abstention == 0.75
    assert -0.8 < lenient.threshold < -0.3
    assert strict.auroc == auroc(known, unknown)


@given(st.lists(st.floats(-10, 0), min_size=1, max_size=20), st.lists(st.floats(-10, 0), min_size=1, max_size=20),
       st.sampled_from([0.0, 0.02, 0.1, 0.5]))
def test_calibration_keeps_its_promise_on_the_calibration_scores(known, unknown, budget):
    cal = calibrate_threshold(known, unknown, max_false_refusal=budget)
    assert cal.false_refusal == sum(s < cal.threshold for s in known) / len(known) <= budget
    assert cal.abstention == sum(s < cal.threshold for s in unknown) / len(unknown)
    # no other threshold refuses more unknown answers within the budget
    for t in sorted(set(known) | set(unknown)):
        for candidate in (t - 1e-9, t + 1e-9):
            if sum(s < candidate for s in known) / len(known) <= budget:
                assert sum(s < candidate for s in unknown) / len(unknown) <= cal.abstention
