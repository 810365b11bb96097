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
