"""Telemetry of the local trainer, run for real on a tiny random Llama: eval loss per epoch,
early stopping, reporting integrations, and token counts from the model's own chat template."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from finetunekit.backends.local.telemetry import REPORTERS
from finetunekit.errors import ConfigError
from finetunekit.examples.example_set import ExampleSet
from finetunekit.registry import get_trainer
from local_fixtures import fast_training_options, read_csv, tiny_model_for_module

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

QUESTIONS = [f"Tell me about the gadget number {i} from Amazon." for i in range(4)]
TRAIN = ExampleSet([{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"It is blue and costs {i} dollars."}]}
                    for i, q in enumerate(QUESTIONS)])
# the same questions with other answers: the better the model learns TRAIN, the worse it does on these
CONFLICTING = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "Zebra quantum violin marmalade."}]}
               for q in QUESTIONS]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_model_for_module(tmp_path_factory)


def options(tiny_model, **extra):
    return fast_training_options(tiny_model, **{"epochs": 2, "max_length": 64, **extra})


def test_early_stopping_stops_before_the_last_epoch_and_keeps_the_best_model(pm, tiny_model, tmp_path):
    from safetensors.torch import load_file

    trainer = get_trainer("local", plugins=pm, **options(tiny_model, epochs=12, early_stopping_patience=1))
    tuned = trainer.train(TRAIN, validation=CONFLICTING, run_dir=tmp_path / "run")
    details = tuned.details
    evals = [float(r["eval_loss"]) for r in read_csv(tuned.metrics_path) if r["eval_loss"]]
    assert details["stopped_early"] and details["global_step"] < details["max_steps"] == 24
    assert 2 <= len(evals) < 12  # one evaluation per epoch run, fewer epochs than asked
    assert evals[-1] > min(evals) and details["best_eval_loss"] == pytest.approx(min(evals))
    best = load_file(f"{details['best_checkpoint']}/adapter_model.safetensors")
    saved = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    assert best.keys() == saved.keys() and all(torch.equal(best[k], saved[k]) for k in best)


def test_early_stopping_without_validation_examples_is_refused_before_loading(pm, tiny_model, tmp_path):
    trainer = get_trainer("local", plugins=pm, **options(tiny_model, early_stopping_patience=2))
    with pytest.raises(ConfigError, match="early_stopping_patience needs validation examples.*validation_size"):
        trainer.train(TRAIN, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "data_report.json").exists()


def test_report_to_tensorboard_writes_its_event_files(pm, tiny_model, tmp_path):
    pytest.importorskip("tensorboard")
    trainer = get_trainer("local", plugins=pm, **options(tiny_model, epochs=1, report_to=["tensorboard"]))
    trainer.train(TRAIN, validation=CONFLICTING[:2], run_dir=tmp_path / "run")
    events = list((tmp_path / "run" / "checkpoints" / "runs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_a_reporting_integration_that_is_not_installed_is_a_config_error(pm, tiny_model):
    missing = [name for name, (modules, _) in REPORTERS.items() if not any(importlib.util.find_spec(m) for m in modules)]
    if not missing:
        pytest.skip("every reporting integration is installed")
    with pytest.raises(ConfigError, match=rf"report_to.*{missing[0]!r}, which is not installed \(pip install"):
        get_trainer("local", plugins=pm, **options(tiny_model, report_to=missing[0]))
    with pytest.raises(ConfigError, match="unknown integration 'tensorbored'"):
        get_trainer("local", plugins=pm, **options(tiny_model, report_to="tensorbored"))


def test_changing_where_metrics_are_reported_does_not_block_reusing_a_finished_run(pm, tiny_model, tmp_path):
    run = tmp_path / "run"
    first = get_trainer("local", plugins=pm, **options(tiny_model, epochs=1)).train(TRAIN, run_dir=run)
    again = get_trainer("local", plugins=pm, **options(tiny_model, epochs=1, logging_steps=3, report_to="all"))
    assert again.train(TRAIN, run_dir=run) == first
    # a run recorded before early_stopping_patience and report_to existed is still the same run
    marker = run / "training.json"
    record = json.loads(marker.read_text())
    for key in ("early_stopping_patience", "report_to"):
        del record["details"]["options"][key]
    marker.write_text(json.dumps(record))
    assert get_trainer("local", plugins=pm, **options(tiny_model, epochs=1)).train(TRAIN, run_dir=run).model == first.model
    with pytest.raises(ConfigError, match="other options"):
        get_trainer("local", plugins=pm, **options(tiny_model, epochs=1, early_stopping_patience=1)).train(
            TRAIN, validation=CONFLICTING, run_dir=run)


def test_local_token_counts_are_the_tokenizers_chat_template_counts(pm, tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    examples = ExampleSet([*TRAIN.examples, {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye, and thanks for all the fish!"}]}])
    report = get_trainer("local", plugins=pm, **options(tiny_model)).check(examples)
    expected = [len(tokenizer.apply_chat_template(e["messages"], tokenize=True)["input_ids"]) for e in examples]
    assert report.tokens.total == sum(expected) and report.tokens.max == max(expected)
    assert not report.tokens_estimated and tiny_model in report.encoding
    # assistant tokens: each answer's own tokens plus its end-of-turn token
    answers = [[m["content"] for m in e["messages"] if m["role"] == "assistant"] for e in examples]
    expected_assistant = [sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in turn) for turn in answers]
    assert report.assistant_tokens.total == sum(expected_assistant)
    # an example over max_length (64 here) is reported as one that will be truncated
    long = ExampleSet([{"messages": [{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "ok"}]}])
    assert get_trainer("local", plugins=pm, **options(tiny_model)).check(long).over_limit == [0]


def test_without_transformers_the_count_is_an_estimate_that_says_why(pm, tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now fails
    report = get_trainer("local", plugins=pm, **options(tiny_model)).check(TRAIN)
    assert report.tokens_estimated and "exact counts need the local backend" in report.token_note
