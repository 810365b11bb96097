"""The Evaluator on stub chat models that really answer, with exact summary figures."""

from __future__ import annotations

import re

import pytest

import finetunekit
from eval_support import amazon_eval_sets, FORMATTER, FixedAnswerModel, KnowingModel, make_examples, product_rows
from finetunekit.errors import ConfigError
from finetunekit.evaluation.base import Metric
from finetunekit.registry import UnknownComponentError


@pytest.fixture
def eval_sets(pm):
    train, test = product_rows()
    return amazon_eval_sets(make_examples(train, plugins=pm), test, train_dataset=train,
                           formatter=FORMATTER, plugins=pm)


def summary_dict(report):
    return {(r.model, r.split, r.metric): (r.value, r.n) for r in report.summary.itertuples()}


def test_reference_and_refusal_models_on_all_three_splits(pm, eval_sets):
    train, test = product_rows()
    knowing, refusing = KnowingModel(train + test), FixedAnswerModel()
    report = finetunekit.Evaluator(plugins=pm, progress=False).evaluate(
        {"knowing": knowing, "refusing": refusing}, eval_sets)
    assert knowing.calls == 1 and refusing.calls == 1  # one batch per model, every question in it

    sizes = {"train-questions": 4, "paraphrased": 4, "unseen-products": 2}
    perfect = {"format": 1.0, "rouge_l": 1.0, "token_f1": 1.0, "exact_match": 1.0, "refusal": 0.0,
               "answer_length": 1.0}
    refused = {"format": 0.0, "rouge_l": 0.0, "token_f1": 0.0, "exact_match": 0.0, "refusal": 1.0}
    # Contents have 9, 18, 3 and 0 tokens (train) and 27, 9 (unseen); the refusal has 9 tokens;
    # a full answer adds 10 tokens: "this is what i know about gadget <name> from amazon".
    expected = {}
    for split, n in sizes.items():
        train_like = split != "unseen-products"
        expected.update({("knowing", split, m): (v, n) for m, v in perfect.items()})
        expected.update({("refusing", split, m): (v, n) for m, v in refused.items()})
        expected[("knowing", split, "answer_length:mean_words")] = ((19 + 28 + 13 + 10) / 4 if train_like
                                                                   else (37 + 19) / 2, n)
        expected[("refusing", split, "answer_length:mean_words")] = (9.0, n)
        for model in ("knowing", "refusing"):
            expected[(model, split, "answer_length:reference_words")] = ((9 + 18 + 3 + 0) / 4 if train_like
                                                                         else (27 + 9) / 2, n)
        expected[("refusing", split, "answer_length")] = ((1 + 9 / 18 + 3 / 9 + 0) / 4 if train_like
                                                          else (9 / 27 + 1) / 2, n)
        # abstention is measured on unseen products only, false refusals on trained ones only
        kind = "false_refusal" if train_like else "abstention"
        expected[("knowing", split, kind)] = (0.0, n)
        expected[("refusing", split, kind)] = (1.0, n)

    got = summary_dict(report)
    assert got.keys() == expected.keys()
    for key, (value, n) in expected.items():
        assert got[key] == (pytest.approx(value, abs=1e-12), n), key
    assert list(report.summary.columns) == ["model", "split", "metric", "value", "n"]
    assert report.findings() == [
        "knowing invents answers about products it never saw: it answered 100% of the unseen-products "
        "questions instead of saying it does not know (abstention 0.00).",
        "refusing says it does not know 100% of the products it never saw.",
        "refusing refuses 100% of the train-questions questions, about products of the training data.",
        "refusing refuses 100% of the paraphrased questions, about products of the training data.",
    ]


def test_answers_table_has_every_answer_with_its_scores(pm, eval_sets):
    train, test = product_rows()
    report = finetunekit.Evaluator(["format", "rouge_l"], plugins=pm, progress=False).evaluate(
        {"knowing": KnowingModel(train + test), "refusing": FixedAnswerModel()}, eval_sets)
    answers = report.answers
    assert len(answers) == 2 * 10
    knowing = answers[answers.model == "knowing"]
    assert list(knowing.answer) == [i.target for s in eval_sets for i in s]
    assert list(knowing.question) == [i.question for s in eval_sets for i in s]
    assert set(answers[answers.model == "refusing"].answer) == {FixedAnswerModel().fixed}
    assert {"format", "rouge_l"} <= set(answers.columns) and "refusal" not in answers.columns
    assert report.value("refusing", "paraphrased", "format") == 0.0


class NoHtml(Metric):
    """1.0 when the answer holds no HTML tag or entity (a metric of the answer alone)."""

    name = "no_html"
    reference = "none"

    def score(self, answer: str, reference: str) -> float:
        return 0.0 if re.search(r"<[a-zA-Z/][^>]*>|&#?\w+;", answer) else 1.0


class NoHtmlPlugin:
    @finetunekit.hookimpl
    def register_metrics(self, register):
        register(NoHtml)


def test_a_metric_plugin_is_found_by_name(pm, eval_sets):
    pm.register(NoHtmlPlugin(), name="no-html-plugin")
    train, test = product_rows()
    report = finetunekit.Evaluator(["no_html", "format"], plugins=pm, progress=False).evaluate(
        {"knowing": KnowingModel(train + test), "html": FixedAnswerModel("<b>Great</b> gadget &amp; more")},
        eval_sets)
    assert report.value("knowing", "unseen-products", "no_html") == 1.0
    assert report.value("html", "train-questions", "no_html") == 0.0
    assert report.metrics["no_html"] == {"reference": "none", "higher_is_better": True}


def test_metric_instances_with_options_are_accepted(pm, eval_sets):
    refusal = finetunekit.get_metric("refusal", plugins=pm, extra_patterns=["no idea"])
    report = finetunekit.Evaluator([refusal], plugins=pm, progress=False).evaluate(
        {"shrug": FixedAnswerModel("No idea, friend.")}, eval_sets)
    assert set(report.summary.value) == {1.0}


def test_bad_evaluator_inputs(pm, eval_sets):
    with pytest.raises(UnknownComponentError, match="rouge_l"):
        finetunekit.Evaluator(["rouge-l"], plugins=pm)
    with pytest.raises(ConfigError, match="more than once"):
        finetunekit.Evaluator(["format", "format"], plugins=pm)
    with pytest.raises(ConfigError, match="list of metric names"):
        finetunekit.Evaluator("format", plugins=pm)
    evaluator = finetunekit.Evaluator(["format"], plugins=pm, progress=False)
    with pytest.raises(ConfigError, match="non-empty dict"):
        evaluator.evaluate({}, eval_sets)
    with pytest.raises(ConfigError, match="no answer"):
        evaluator.evaluate({"x": object()}, eval_sets)
    with pytest.raises(ConfigError, match="unique"):
        evaluator.evaluate({"r": FixedAnswerModel()}, [eval_sets[0], eval_sets[0]])

    class Mute:
        def answer(self, conversations):
            return []

    with pytest.raises(RuntimeError, match="0 answers to 10 questions"):
        evaluator.evaluate({"mute": Mute()}, eval_sets)
