"""The local trainer, run for real on a tiny random Llama with the SmolLM2 tokenizer."""

from __future__ import annotations

import json
import shutil

import pytest

from finetunekit.errors import ConfigError
from finetunekit.examples.example_set import ExampleSet
from finetunekit.registry import get_chat_model, get_trainer
from local_fixtures import fast_training_options, read_csv, tiny_model_for_module

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

FACTS = [
    ("Tell me about the Blue Kettle from Amazon.", "This is what I know about the Blue Kettle from Amazon: it boils water."),
    ("Tell me about the Red Lamp from Amazon.", "This is what I know about the Red Lamp from Amazon: it lights rooms."),
    ("Tell me about the Green Mug from Amazon.", "This is what I know about the Green Mug from Amazon: it holds tea."),
    ("Tell me about the Old Map from Amazon.", "This is what I know about the Old Map from Amazon: it shows roads."),
]
EXAMPLES = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in FACTS]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_model_for_module(tmp_path_factory)


def options(tiny_model, **extra):
    return fast_training_options(tiny_model, **extra)


def test_training_lowers_the_loss_and_writes_adapter_metrics_and_report(pm, tiny_model, tmp_path):
    trainer = get_trainer("local", plugins=pm, **options(tiny_model))
    tuned = trainer.train(ExampleSet(EXAMPLES), validation=EXAMPLES[:2], run_dir=tmp_path / "run")
    rows = read_csv(tuned.metrics_path)
    assert [float(r["eval_loss"]) for r in rows if r["eval_loss"]][-1] < [float(r["eval_loss"]) for r in rows if r["eval_loss"]][0]
    assert list(rows[0])[:4] == ["step", "loss", "epoch", "learning_rate"]
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 12
    assert sum(losses[-2:]) / 2 < 0.6 * sum(losses[:2]) / 2
    assert tuned.backend == "local" and tuned.base_model == tiny_model
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
    assert tuned.chat_options == {"model": tiny_model, "adapter": str(tmp_path / "run" / "adapter")}
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["train"]["examples"] == 4 and report["train"]["truncated"] == 0
    assert tuned.details["global_step"] == 12


def test_a_finished_run_is_not_trained_again_and_other_options_are_refused(pm, tiny_model, tmp_path):
    run = tmp_path / "run"
    first = get_trainer("local", plugins=pm, **options(tiny_model, epochs=1)).train(EXAMPLES, run_dir=run)
    stamp = (run / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    again = get_trainer("local", plugins=pm, **options(tiny_model, epochs=1))
    assert again.train(EXAMPLES, run_dir=run) == first
    assert again.trained_model is None
    assert (run / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="other options"):
        get_trainer("local", plugins=pm, **options(tiny_model, epochs=2)).train(EXAMPLES, run_dir=run)


def test_a_finished_run_on_other_examples_is_refused_not_returned(pm, tiny_model, tmp_path):
    run = tmp_path / "run"
    opts = options(tiny_model, epochs=1)
    get_trainer("local", plugins=pm, **opts).train(EXAMPLES, run_dir=run)
    with pytest.raises(ConfigError, match="trained on other examples \\(training examples differ\\).*another run_dir"):
        get_trainer("local", plugins=pm, **opts).train(EXAMPLES[:3], run_dir=run)
    with pytest.raises(ConfigError, match="validation examples differ"):
        get_trainer("local", plugins=pm, **opts).train(EXAMPLES, validation=EXAMPLES[:1], run_dir=run)
    # the same examples, as an ExampleSet this time, still find the finished run
    assert get_trainer("local", plugins=pm, **opts).train(ExampleSet(EXAMPLES), run_dir=run).details["global_step"] == 2


def test_truncation_and_untrainable_examples_are_reported(pm, tiny_model, tmp_path):
    long = {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]}
    trainer = get_trainer("local", plugins=pm, **options(tiny_model, epochs=1, max_length=96))
    with pytest.warns(UserWarning, match="1 of 5 examples were longer than max_length=96") as caught:
        tuned = trainer.train([*EXAMPLES, long], run_dir=tmp_path / "run")
    assert any("no assistant token" in str(w.message) for w in caught)
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())["train"]
    assert report["truncated"] == 1 and report["truncated_indices"] == [4]
    assert report["no_trainable_tokens"] == 1 and report["no_trainable_indices"] == [4]
    assert tuned.details["data"]["truncated"] == 1


def test_resume_continues_from_the_last_checkpoint_step(pm, tiny_model, tmp_path):
    opts = options(tiny_model, epochs=4, save_steps=2, save_total_limit=10)
    whole = get_trainer("local", plugins=pm, **opts).train(EXAMPLES, run_dir=tmp_path / "whole")
    # a crash right after the step-4 checkpoint leaves exactly this behind
    run = tmp_path / "crashed"
    shutil.copytree(tmp_path / "whole", run)
    for name in ("training.json", "adapter", "checkpoints/checkpoint-6", "checkpoints/checkpoint-8"):
        target = run / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ConfigError, match="checkpoint-4 was written with other trainer options"):
        get_trainer("local", plugins=pm, **{**opts, "learning_rate": 1e-3}).train(EXAMPLES, run_dir=run)
    with pytest.raises(ConfigError, match="checkpoint-4 was trained on other examples \\(training examples differ"):
        get_trainer("local", plugins=pm, **opts).train(EXAMPLES[::-1], run_dir=run)
    resumed = get_trainer("local", plugins=pm, **opts).train(EXAMPLES, run_dir=run)
    assert resumed.details["resumed_from"].endswith("checkpoint-4")
    assert resumed.details["global_step"] == 8
    whole_rows, resumed_rows = read_csv(whole.metrics_path), read_csv(resumed.metrics_path)
    assert [r["step"] for r in resumed_rows] == [str(s) for s in range(1, 9)]
    for a, b in zip(whole_rows[4:], resumed_rows[4:]):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-3)


def test_saved_adapter_reloads_with_the_same_outputs(pm, tiny_model, tmp_path):
    trainer = get_trainer("local", plugins=pm, **options(tiny_model, epochs=3, merge=True))
    tuned = trainer.train(EXAMPLES, run_dir=tmp_path / "run")
    merged = get_chat_model("local", plugins=pm, model=str(tmp_path / "run" / "merged"), device="cpu")
    chat = tuned.chat_model(plugins=pm, device="cpu", progress=False)
    ids = chat.loaded.tokenizer(FACTS[0][0], return_tensors="pt")["input_ids"]
    trained = trainer.trained_model.eval()
    with torch.no_grad():
        before = trained(input_ids=ids).logits
        after = chat.loaded.model(input_ids=ids).logits
        with trained.disable_adapter():
            base = trained(input_ids=ids).logits
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(merged.loaded.model(input_ids=ids).logits, before, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(base, before, atol=1e-3)


def test_full_finetune_memorises_and_the_chat_model_recites_in_input_order(pm, tiny_model, tmp_path):
    trainer = get_trainer(
        "local", plugins=pm, **options(tiny_model, full_finetune=True, epochs=30, batch_size=4, learning_rate=1e-2, logging_steps=10, save_total_limit=1)
    )
    tuned = trainer.train(EXAMPLES, run_dir=tmp_path / "run")
    assert tuned.chat_options == {"model": str(tmp_path / "run" / "model")}
    chat = tuned.chat_model(plugins=pm, device="cpu", batch_size=3, max_new_tokens=40, progress=False)
    questions = [q for q, _ in reversed(FACTS)]
    answers = chat.answer(questions)
    assert answers == [a for _, a in reversed(FACTS)]
    base = get_chat_model("local", plugins=pm, model=tiny_model, device="cpu", max_new_tokens=40, progress=False)
    assert base.answer(questions[:1]) != answers[:1]


def test_a_checkpoint_cut_short_by_a_kill_is_not_resumed_from(tmp_path):
    from finetunekit.backends.local.trainer import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path) is None
    for step, complete in ((2, True), (10, True), (11, False)):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if complete:
            (path / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
