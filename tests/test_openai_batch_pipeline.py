"""One config switch (evaluation.chat_options.batch) sends a whole hosted evaluation through the Batch API."""

from __future__ import annotations

import pandas as pd

from finetunekit.config import PipelineConfig
from finetunekit.pipeline import Pipeline
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from pipeline_support import make_source


def test_the_pipeline_evaluates_both_models_in_one_batch_each(fake_openai, pm, tmp_path):
    client = fake_openai.client(max_retries=2)
    config = PipelineConfig.model_validate({
        "run_dir": str(tmp_path / "run"), "seed": 5, "formatter": "amazon-product",
        "dataset": {"source": str(make_source(tmp_path)), "sample_size": 16, "test_size": 4,
                    "clean": {"min_content_length": 20}},
        "prompts": {"train": "amazon-product", "paraphrased": "amazon-product-paraphrased"},
        "trainer": {"name": "openai", "options": {"client": client, "poll_interval_min": 0.001,
                                                  "poll_interval_max": 0.002}},
        "evaluation": {
            "metrics": ["format", "rouge_l"],
            "base_model": {"name": "openai", "options": {"model": "gpt-4o-mini"}},
            "chat_options": {"client": client, "batch": True, "progress": False,
                             "batch_poll_interval_min": 0.001, "batch_poll_interval_max": 0.002},
        },
    })
    report = Pipeline.from_config(config, plugins=pm).run()

    answers = pd.read_csv(tmp_path / "run" / "report" / "answers.csv")
    per_model = answers.groupby("model").size().to_dict()
    assert per_model["base"] == per_model["fine-tuned"] > 10
    assert fake_openai.batches_created == 2 and fake_openai.chat_requests == 0
    assert fake_openai.batch_lines_run == len(answers)
    tuned = answers[(answers["model"] == "fine-tuned") & (answers["split"] == "train-questions")]
    assert (tuned["answer"] == tuned["reference"]).all(), "the fine-tuned model answers its trained questions"
    assert report.summary is not None
    assert list((tmp_path / "run" / "answers" / "base" / "batches").glob("*.requests.jsonl"))
