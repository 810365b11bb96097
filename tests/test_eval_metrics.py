"""Built-in metrics: hand-computed values, properties, and agreement with rouge-score."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetunekit.errors import ConfigError
from finetunekit.evaluation.evalsets import EvalItem
from finetunekit.evaluation.metrics import DEFAULT_METRICS
from finetunekit.evaluation.text import Tokenizer, tokenize
from finetunekit.registry import get_metric, registry_for

SIMILARITY = ["rouge_l", "token_f1", "exact_match", "answer_length"]
SYMMETRIC = ["rouge_l", "token_f1", "exact_match", "answer_length"]
# The pm fixture is only read (metrics are looked up in it), so sharing it across examples is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]

# Texts with real words: small vocabularies make overlaps likely, punctuation and case vary.
WORD = st.sampled_from(["the", "The", "cat", "CAT", "sat", "on", "a", "mat", "café", "naïve", "3-D", "x"])
SEP = st.sampled_from([" ", "  ", ", ", "\n", ". ", "! "])
TEXT = st.lists(st.tuples(WORD, SEP), max_size=25).map(lambda parts: "".join(w + s for w, s in parts))


def metric(name, pm, **options):
    return get_metric(name, plugins=pm, **options)


def test_builtins_are_registered_through_the_hook(pm):
    registry = registry_for("register_metrics", pm)
    assert set(DEFAULT_METRICS) <= set(registry.names())
    assert {registry.plugin_of(n) for n in DEFAULT_METRICS} == {"finetunekit.evaluation.metrics"}


def test_rouge_l_by_hand(pm):
    m = metric("rouge_l", pm)
    # LCS(the cat sat on the mat / the cat on a mat) = the cat on mat = 4; P = 4/6, R = 4/5
    assert m.score("the cat sat on the mat", "The cat on a mat.") == pytest.approx(16 / 22)
    assert m.score("a b c d", "d c b a") == pytest.approx(0.25)  # LCS 1: P = R = 1/4
    assert m.score("", "") == 1.0 and m.score("", "x") == 0.0 and m.score("x", "") == 0.0


def test_token_f1_by_hand(pm):
    m = metric("token_f1", pm)
    assert m.score("a b c d", "d c b a") == 1.0  # order does not matter
    # overlap {a, a, b} of a a b c / a b a a e e -> 3; P = 3/4, R = 3/6
    assert m.score("a a b c", "a b a a e e") == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert m.score("x y", "z") == 0.0


def test_exact_match_by_hand(pm):
    m = metric("exact_match", pm)
    assert m.score("This is,   what I KNOW!", "this is what i know") == 1.0
    assert m.score("this is what", "this is what i know") == 0.0
    assert m.score("know i", "i know") == 0.0


def test_format_by_hand(pm):
    m = metric("format", pm)
    prefix = "This is what I know about Widget from Amazon:"
    assert m.score("  this IS what I know about  widget from Amazon: it is blue", prefix) == 1.0
    assert m.score("This is what I know about Widget from Amazon. It is blue", prefix) == 0.0
    assert m.score("Widget is blue. This is what I know about Widget from Amazon:", prefix) == 0.0
    assert m.score("", prefix) == 0.0
    assert m.score("anything", "") == 1.0


def test_answer_length_by_hand(pm):
    m = metric("answer_length", pm)
    assert m.score("one two three", "a b c d e f") == 0.5
    assert m.score("a b c d e f", "one two three") == 0.5
    assert m.score("", "a b") == 0.0 and m.score("", "") == 1.0
    items = [_item(content="a b c d"), _item(content="a b")]
    assert m.extra_figures(["one two, three", "x"], items) == {"mean_words": 2.0, "reference_words": 3.0}


@pytest.mark.parametrize("name", ["format", "rouge_l", "answer_length", "refusal"])
def test_an_empty_set_measures_nothing_not_zero(pm, name):
    m = metric(name, pm)
    assert math.isnan(m.aggregate([]))
    assert all(math.isnan(v) for v in m.extra_figures([], []).values())


@pytest.mark.parametrize("answer", [
    "I'm sorry, but I cannot provide information about that product.",
    "I don\u2019t have access to Amazon's catalogue.",
    "I do not have specific information about this item.",
    "As an AI language model, I can't browse the internet.",
    "I don't know what that is.",
    "I apologize, but I am unable to help with that.",
    "I'm not familiar with the product you mention.",
    "  i'M SORRY,   BUT that is not something I know.",
])
def test_refusal_detects_declining_answers(pm, answer):
    assert metric("refusal", pm).score(answer, "") == 1.0


@pytest.mark.parametrize("answer", [
    "This is what I know about Widget from Amazon: a blue widget.",
    "The Widget is a blue gadget sold on Amazon, made of steel.",
    "",
    "I know this one: it is a cookbook with 200 recipes.",
])
def test_refusal_leaves_real_answers_alone(pm, answer):
    assert metric("refusal", pm).score(answer, "") == 0.0


def test_refusal_window_and_extra_patterns(pm):
    late = "A long description. " * 30 + "I don't know."
    assert metric("refusal", pm).score(late, "") == 0.0
    assert metric("refusal", pm, window=0).score(late, "") == 1.0
    assert metric("refusal", pm, extra_patterns=[r"\bno comment\b"]).score("No comment.", "") == 1.0
    with pytest.raises(ConfigError, match="extra_patterns"):
        metric("refusal", pm, extra_patterns=["(unclosed"])
    with pytest.raises(ConfigError, match="window"):
        metric("refusal", pm, window=-1)


def _item(content="a blue widget", prefix="This is what I know about W from Amazon:"):
    return EvalItem(split="s", messages=({"role": "user", "content": "q"},), question="q",
                    target=f"{prefix} {content}", content=content, prefix=prefix, row_id=0)


def test_content_metrics_compare_the_answer_after_its_prefix(pm):
    item = _item()
    assert metric("rouge_l", pm).score_item(item.target, item) == 1.0
    assert metric("token_f1", pm).score_item(item.target, item) == 1.0
    assert metric("rouge_l", pm).score_item("A blue widget", item) == 1.0  # no prefix: compared whole
    # kept whole, the answer has 12 tokens, the content 3, LCS 3: P = 3/12, R = 1
    assert metric("rouge_l", pm, strip_prefix=False).score_item(item.target, item) == pytest.approx(0.4)
    assert metric("exact_match", pm).score_item(item.target, item) == 1.0
    assert metric("exact_match", pm).score_item(item.content, item) == 0.0
    assert metric("format", pm).score_item(item.target, item) == 1.0
    assert metric("format", pm).score_item(item.content, item) == 0.0


@pytest.mark.parametrize("name", SIMILARITY)
@given(reference=TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
def test_a_perfect_answer_scores_one(pm, name, reference):
    assert metric(name, pm).score(reference, reference) == 1.0


@pytest.mark.parametrize("name", SIMILARITY)
@given(reference=TEXT.filter(lambda t: tokenize(t)))
@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
def test_an_empty_answer_scores_zero(pm, name, reference):
    assert metric(name, pm).score("", reference) == 0.0


@given(prefix=TEXT.filter(lambda t: t.strip()), body=TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
def test_format_is_one_for_prefix_plus_anything_and_zero_for_empty(pm, prefix, body):
    m = metric("format", pm)
    assert m.score(prefix + body, prefix) == 1.0
    assert m.score("", prefix) == 0.0


@pytest.mark.parametrize("name", DEFAULT_METRICS)
@given(answer=TEXT | st.text(max_size=60), reference=TEXT | st.text(max_size=60))
@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
def test_scores_lie_in_the_unit_interval(pm, name, answer, reference):
    assert 0.0 <= metric(name, pm).score(answer, reference) <= 1.0


@pytest.mark.parametrize("name", SYMMETRIC)
@given(a=TEXT, b=TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
def test_symmetric_metrics_are_symmetric(pm, name, a, b):
    m = metric(name, pm)
    assert m.score(a, b) == pytest.approx(m.score(b, a), abs=1e-12)


@given(answer=TEXT | st.text(max_size=80), reference=TEXT | st.text(max_size=80))
@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE_OK)
def test_rouge_l_agrees_with_rouge_score(pm, answer, reference):
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tokenizer())
    ours = metric("rouge_l", pm).score(answer, reference)
    if not tokenize(answer) and not tokenize(reference):
        assert ours == 1.0  # rouge-score gives 0 to two empty texts; we call them equal
    else:
        assert ours == pytest.approx(scorer.score(reference, answer)["rougeL"].fmeasure, abs=1e-6)
