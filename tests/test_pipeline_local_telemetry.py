"""The pipeline on a tiny real model: a validation split gives an eval loss per epoch (in
metrics.csv and the report), and ShareGPT chat data trains and is evaluated end to end."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from finetunekit.pipeline import Pipeline
from pipeline_support import config_toml, make_source, make_tiny_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    return make_tiny_model(root), make_source(root)


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_validation_size_gives_an_eval_loss_per_epoch_in_metrics_and_report(pm, tmp_path, assets):
    model, source = assets
    config = tomllib.loads(config_toml(tmp_path / "run", model, source, epochs=3))
    config["dataset"]["validation_size"] = 2
    report_dir = tmp_path / "run" / "report"
    Pipeline.from_config(config, plugins=pm).run()

    data = tmp_path / "run" / "data"
    ids = {name: {r["_row_id"] for r in rows(data / f"{name}.jsonl")} for name in ("train", "test", "validation")}
    assert len(ids["validation"]) == 2 and len(ids["test"]) == 3
    assert not (ids["validation"] & ids["train"] or ids["validation"] & ids["test"])
    with open(tmp_path / "run" / "train" / "metrics.csv", newline="") as handle:
        evals = [r for r in csv.DictReader(handle) if r["eval_loss"]]
    assert [float(r["epoch"]) for r in evals] == [1.0, 2.0, 3.0]
    assert all(float(r["eval_loss"]) > 0 for r in evals)
    assert "Eval loss (held-out validation examples)" in (report_dir / "report.md").read_text(encoding="utf-8")
    fine_tuned = json.loads((tmp_path / "run" / "train" / "fine_tuned_model.json").read_text(encoding="utf-8"))
    assert fine_tuned["details"]["data"]["examples"] == len(ids["train"])


def test_sharegpt_conversations_train_a_real_model_through_the_pipeline(pm, tmp_path, assets):
    model, _ = assets
    source = tmp_path / "chats.jsonl"
    source.write_text("".join(json.dumps({"conversations": [
        {"from": "system", "value": "You know gadgets."},
        {"from": "human", "value": f"What is gadget {i}?"},
        {"from": "gpt", "value": f"Gadget {i} is a tool."},
    ]}) + "\n" for i in range(10)), encoding="utf-8")
    config = tomllib.loads(config_toml(tmp_path / "run", model, source, epochs=1))
    del config["formatter"], config["prompts"], config["dataset"]["clean"]
    config["dataset"].update(chat_format="sharegpt", sample_size=10, validation_size=2)
    report = Pipeline.from_config(config, plugins=pm).run()

    assert set(report.splits) == {"train-questions", "unseen-products"}
    train = tmp_path / "run" / "train"
    assert (train / "adapter" / "adapter_config.json").is_file()
    assert json.loads((train / "data_report.json").read_text())["validation"]["examples"] == 2
    answers = report.answers
    asked = answers[answers.split == "unseen-products"].question.tolist()
    assert asked and all(q.startswith("What is gadget") for q in asked)
    validation = json.loads((tmp_path / "run" / "examples" / "validation.json").read_text())
    assert validation["ok"] and not validation["tokens_estimated"]
