"""The pipeline keeps its side of the component contract, checked on the torch-free fake backend:
work is prepared once and passed forward, backend rules stay in the backend, the
training-metrics file has its documented columns."""

from __future__ import annotations

import csv
import json

import pytest

import finetunekit
from finetunekit import hookimpl
from finetunekit.errors import ConfigError
from finetunekit.pipeline import Pipeline
from finetunekit.testing import fake_backend


def write_rows(path, n):
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(json.dumps({"title": f"Widget {i}", "content": f"Widget {i} is made of part {i * 7}."}) + "\n")
    return path


class CountingFormatter(finetunekit.ResponseFormatter):
    """The answer template, counting how often rows are formatted."""

    name = "counting"
    calls = 0

    def __init__(self):
        super().__init__("About {title}: {content}")

    def format(self, row):
        CountingFormatter.calls += 1
        return super().format(row)

    def prefix(self, row):
        return self.template.prefix(row)


class Plugin:
    @hookimpl
    def register_response_formatters(self, register):
        register(CountingFormatter)

    @hookimpl
    def register_prompt_templates(self, register):
        register(finetunekit.PromptTemplateSet(name="widget", templates=["What is {title}?", "Describe {title}."]))
        register(finetunekit.PromptTemplateSet(name="widget-new", templates=["Tell me about {title}, please."]))


@pytest.fixture
def pm(pm):
    pm.register(fake_backend)
    pm.register(Plugin(), name="widget-plugin")
    return pm


def config(tmp_path, rows, trainer="fake", **extra):
    data = {
        "run_dir": str(tmp_path / "run"), "seed": 3, "formatter": "counting",
        "dataset": {"source": str(write_rows(tmp_path / "rows.jsonl", rows)), "test_size": 2},
        "prompts": {"train": "widget", "paraphrased": "widget-new"},
        "trainer": {"name": trainer, "options": {}},
        "evaluation": {"base_model": {"name": "fake"}, "metrics": ["format", "exact_match"]},
    }
    data.update(extra)
    return data


def test_a_run_prepares_once_and_passes_the_examples_forward(pm, tmp_path):
    pipeline = Pipeline.from_config(config(tmp_path, 12), plugins=pm)
    CountingFormatter.calls = 0
    pipeline.prepare()
    pipeline.prepare()
    pipeline.train()
    assert CountingFormatter.calls == 10  # each of the 10 training rows formatted once, not once per stage
    report = pipeline.run()
    exact = report.summary.query("metric == 'exact_match' and split == 'train-questions'")
    assert dict(zip(exact.model, exact.value)) == {"base": 0.0, "fine-tuned": 1.0}


def test_the_ten_example_minimum_is_the_openai_backends_not_the_pipelines(pm, tmp_path):
    # 8 rows, 6 to train on: a local (here: fake) run prepares; an OpenAI run is refused at prepare
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    prepared = Pipeline.from_config(config(tmp_path / "a", 8), plugins=pm).prepare()
    assert len(prepared.examples) == 6 and prepared.validation["ok"]
    with pytest.raises(ConfigError, match="at least 10"):
        Pipeline.from_config(config(tmp_path / "b", 8, trainer="openai"), plugins=pm).prepare()


def test_the_training_metrics_file_has_the_documented_columns(pm, tmp_path):
    tuned = Pipeline.from_config(config(tmp_path, 12), plugins=pm).train()
    with open(tuned.metrics_path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {"step", "loss"} <= set(rows[0])
    assert [int(r["step"]) for r in rows] == sorted(int(r["step"]) for r in rows)


def test_options_the_pipeline_provides_are_declared_not_guessed(pm, tmp_path):
    from finetunekit.backends.local.trainer import LocalTrainer
    from finetunekit.chat import ChatModel

    assert LocalTrainer.Options.pipeline_fields() == {"seed": "seed"}
    assert ChatModel.Options.pipeline_fields() == {"answer_cache_dir": "answer_cache_dir"}
    assert "logging_steps" not in LocalTrainer.Options.result_fields()
    pipeline = Pipeline.from_config(config(tmp_path, 12), plugins=pm)
    assert pipeline._trainer().options.seed == 3  # the run's seed reached the option that asked for it


def abstaining_config(tmp_path, rows=30):
    data = config(tmp_path, rows, refusal_formatter="I do not know {title}.")
    data["dataset"].update(test_size=4, calibration_size=4, negative_size=3)
    data["prompts"].update(questions_per_row=2)
    data["evaluation"].update(abstain=True, max_false_refusal=0.0, metrics=["format", "abstention", "false_refusal"])
    return data


def test_held_out_splits_are_disjoint_and_negatives_are_trained_to_refuse(pm, tmp_path):
    prepared = Pipeline.from_config(abstaining_config(tmp_path), plugins=pm).prepare()
    ids = {name: {r["_row_id"] for r in getattr(prepared, name).records()}
           for name in ("train", "test", "calibration", "negatives")}
    assert {name: len(v) for name, v in ids.items()} == {"train": 19, "test": 4, "calibration": 4, "negatives": 3}
    for a, b in [("train", "test"), ("train", "calibration"), ("train", "negatives"), ("test", "calibration"),
                 ("test", "negatives"), ("calibration", "negatives")]:
        assert not ids[a] & ids[b], (a, b)
    negative = [(e, m) for e, m in zip(prepared.examples.examples, prepared.examples.metadata) if m.get("negative")]
    assert {m["row_id"] for _, m in negative} == ids["negatives"] and len(negative) == 3 * 2
    assert all(e["messages"][-1]["content"].startswith("I do not know Widget") for e, _ in negative)
    assert len(prepared.positives) == 19 * 2 and not any(m.get("negative") for m in prepared.positives.metadata)


def test_abstention_is_calibrated_on_calibration_rows_never_on_eval_rows(pm, tmp_path):
    pipeline = Pipeline.from_config(abstaining_config(tmp_path), plugins=pm)
    report = pipeline.run()
    calibration = json.loads((tmp_path / "run" / "report" / "calibration.json").read_text())
    eval_unseen = {r["_row_id"] for r in pipeline.prepare().test.records()}
    calibration_rows = {r["_row_id"] for r in pipeline.prepare().calibration.records()}
    assert set(calibration["unknown_row_ids"]) == calibration_rows and not calibration_rows & eval_unseen
    assert calibration["false_refusal"] == 0.0 and calibration["abstention"] > 0.5
    assert report.value("fine-tuned", "unseen-products", "abstention") > 0.5
    assert report.value("fine-tuned", "train-questions", "false_refusal") == 0.0
    assert "confidence_auroc" in set(report.summary.metric)
