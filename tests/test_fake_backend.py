"""The fake backend of ``finetunekit.testing``: trainer, chat model and model source ``fake``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from finetunekit.examples.build import build_examples
from finetunekit.registry import UnknownComponentError, get_chat_model, get_trainer, registry_for
from finetunekit.testing import fake_backend
from finetunekit.testing.fake_backend import UNKNOWN_ANSWER, FakeChatModel, FakeTrainer, training_counts

ROWS = [{"_row_id": f"r{i}", "title": f"Gadget {i}", "content": f"Gadget {i} does {i} things."} for i in range(4)]


@pytest.fixture
def fake_pm(pm):
    pm.register(fake_backend)
    return pm


@pytest.fixture
def examples():
    return build_examples(ROWS, ["What is {title}?"], "{content}")


def test_registering_the_module_adds_the_fake_components(pm):
    assert "fake" not in registry_for("register_trainers", pm)
    pm.register(fake_backend)
    assert registry_for("register_trainers", pm).get("fake") is FakeTrainer
    assert registry_for("register_chat_models", pm).get("fake") is FakeChatModel
    assert registry_for("register_model_sources", pm).plugin_of("fake-source") == pm.get_name(fake_backend)
    pm.unregister(fake_backend)
    with pytest.raises(UnknownComponentError):
        registry_for("register_chat_models", pm).get("fake")


def test_options_declare_their_contract():
    assert FakeTrainer.Options.result_fields() == {"base_model", "steps", "seed"}
    assert FakeTrainer.Options.pipeline_fields() == {"seed": "seed"}
    assert "model" not in FakeChatModel.Options.model_fields
    assert FakeChatModel.Options.pipeline_fields() == {"answer_cache_dir": "answer_cache_dir"}
    assert "request_timeout" not in FakeChatModel.Options.result_fields()


def test_train_learns_the_examples_and_resumes(fake_pm, examples, tmp_path):
    run_dir = tmp_path / "run"
    tuned = get_trainer("fake", plugins=fake_pm, steps=4, seed=7).train(examples, run_dir=run_dir)
    assert tuned.backend == "fake" and tuned.chat_options == {"table": tuned.model}
    assert json.loads(Path(tuned.model).read_text())["What is Gadget 2?"] == "Gadget 2 does 2 things."
    loss = pd.read_csv(tuned.metrics_path)
    assert list(loss["step"]) == [1, 2, 3, 4] and loss["loss"].is_monotonic_decreasing
    assert tuned.details["seed"] == 7 and Path(tuned.details["base_model_dir"], "config.json").is_file()
    assert training_counts(run_dir) == {"trained": 1, "resumed": 0}

    again = get_trainer("fake", plugins=fake_pm, steps=4, request_timeout=1).train(examples, run_dir=run_dir)
    assert again == tuned
    assert training_counts(run_dir) == {"trained": 1, "resumed": 1}


def test_chat_model_answers_from_the_table(fake_pm, examples, tmp_path):
    tuned = get_trainer("fake", plugins=fake_pm).train(examples, run_dir=tmp_path / "run")
    model = tuned.chat_model(plugins=fake_pm)
    assert model.answer(["What is Gadget 1?", "What is a cat?"]) == ["Gadget 1 does 1 things.", UNKNOWN_ANSWER]
    assert tuned.chat_model(plugins=fake_pm, echo_unknown=True).answer(["Hm?"]) == ["Hm?"]
    assert get_chat_model("fake", plugins=fake_pm).answer(["What is Gadget 1?"]) == [UNKNOWN_ANSWER]  # base model


def test_a_retrained_table_is_not_answered_from_the_cache(fake_pm, tmp_path):
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"q": "old"}))
    options = {"table": str(table), "answer_cache_dir": str(tmp_path / "cache")}
    assert get_chat_model("fake", plugins=fake_pm, **options).answer(["q"]) == ["old"]
    table.write_text(json.dumps({"q": "new"}))
    assert get_chat_model("fake", plugins=fake_pm, **options).answer(["q"]) == ["new"]


def test_model_source_resolves_to_a_folder(tmp_path):
    source = fake_backend.FakeModelSource()
    cached = source.resolve(tmp_path)
    assert cached == tmp_path / "fake-source" and (cached / "config.json").is_file()
    temporary = source.resolve()
    assert temporary.is_dir() and source.resolve() == temporary
