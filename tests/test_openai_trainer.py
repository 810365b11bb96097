"""Trainer "openai" driven through the real SDK over HTTP against the fake server."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from finetunekit.errors import TrainingError
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from finetunekit.backends.openai.job import (
    STATE_FILE,
    InvalidExamplesError,
    OpenAIJobCancelledError,
    OpenAIJobFailedError,
)
from openai_helpers import REAL_ROWS, fake_trainer, make_examples, real_examples


def test_happy_path_returns_model_metrics_and_checkpoints(fake_openai, pm, tmp_path):
    trainer = fake_trainer(fake_openai, pm, n_epochs=2, suffix="amazon", seed=7, metadata={"team": "catalog"})
    tuned = trainer.train(make_examples(12), make_examples(10, "Other"), run_dir=tmp_path)

    job = fake_openai.job(tuned.details["job_id"])
    assert tuned.backend == "openai" and tuned.base_model == "gpt-4o-mini-2024-07-18"
    assert tuned.model == job["fine_tuned_model"] and ":amazon:" in tuned.model
    assert tuned.details["hyperparameters"]["n_epochs"] == 2
    assert tuned.details["trained_tokens"] == job["trained_tokens"] > 0
    assert [c["step_number"] for c in tuned.details["checkpoints"]] == [12, 24]
    request = fake_openai.requests("jobs.create", outcome="ok")[0].body
    assert request["method"] == {"type": "supervised", "supervised": {"hyperparameters": {
        "n_epochs": 2, "batch_size": "auto", "learning_rate_multiplier": "auto"}}}
    assert request["seed"] == 7 and request["metadata"]["team"] == "catalog"
    assert request["validation_file"] == tuned.details["validation_file"]
    uploaded = fake_openai.file_bytes(request["training_file"]).decode().splitlines()
    assert [json.loads(line) for line in uploaded] == make_examples(12)
    metrics = pd.read_csv(tuned.metrics_path)
    assert list(metrics["step"]) == list(range(1, 25))
    assert metrics["loss"].iloc[-1] < metrics["loss"].iloc[0] and "eval_loss" in metrics
    status_lines = [line for line in trainer.lines if line.startswith(f"[openai] job {job['id']}:")]
    assert [line.split(": ")[-1] for line in status_lines] == ["queued", "running", "succeeded"]
    assert sum("New fine-tuned model created" in line for line in trainer.lines) == 1
    assert json.loads((tmp_path / STATE_FILE).read_text())["status"] == "succeeded"


def test_fine_tuned_model_answers_trained_questions(fake_openai, pm, tmp_path):
    examples = make_examples(12)
    tuned = fake_trainer(fake_openai, pm).train(examples, run_dir=tmp_path)
    chat = tuned.chat_model(plugins=pm, client=fake_openai.client(), progress=False)
    questions = [e["messages"][0]["content"] for e in examples[:3]]
    assert chat.answer(questions) == [e["messages"][1]["content"] for e in examples[:3]]
    assert chat.options.model == tuned.model


def test_invalid_examples_are_refused_before_any_request(fake_openai, pm, tmp_path):
    bad = make_examples(12)
    bad[3] = {"messages": [{"role": "user", "content": "no answer"}]}
    bad[5] = {"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}
    with pytest.raises(InvalidExamplesError) as caught:
        fake_trainer(fake_openai, pm).train(bad, run_dir=tmp_path)
    message = str(caught.value)
    assert "2 error(s)" in message or len(caught.value.errors) >= 2
    assert fake_openai.count(outcome=None) == 0
    assert not (tmp_path / STATE_FILE).exists()


def test_failed_job_raises_with_api_code_and_message(fake_openai, pm, tmp_path):
    fake_openai.fail_next_job("invalid_n_examples", "Training file has 12 example(s), but must have at least 10.")
    with pytest.raises(OpenAIJobFailedError) as caught:
        fake_trainer(fake_openai, pm).train(make_examples(12), run_dir=tmp_path)
    assert isinstance(caught.value, TrainingError)
    assert caught.value.code == "invalid_n_examples"
    assert "must have at least 10" in caught.value.api_message and "invalid_n_examples" in str(caught.value)


def test_job_cancelled_by_the_provider_raises(fake_openai, pm, tmp_path):
    fake_openai.cancel_next_job()
    with pytest.raises(OpenAIJobCancelledError):
        fake_trainer(fake_openai, pm).train(make_examples(12), run_dir=tmp_path)


def test_unknown_status_is_shown_and_polling_continues(fake_openai, pm, tmp_path):
    fake_openai.next_job_with_unknown_status("paused_for_review")
    trainer = fake_trainer(fake_openai, pm, client=fake_openai.client(strict=False))
    tuned = trainer.train(make_examples(12), run_dir=tmp_path)
    assert tuned.model.startswith("ft:")
    shown = [line for line in trainer.lines if "paused_for_review" in line and "still polling" in line]
    assert len(shown) == 1


def test_transient_faults_during_training_are_retried(fake_openai, pm, tmp_path):
    fake_openai.rate_limit("files.create", times=2, retry_after=0.01)
    fake_openai.fail("jobs.create", status=500, times=1, retry_after=0.01)
    fake_openai.hang("jobs.retrieve", times=1, seconds=5)
    trainer = fake_trainer(fake_openai, pm, timeout=0.5)
    tuned = trainer.train(make_examples(12), run_dir=tmp_path)
    assert tuned.model.startswith("ft:")
    assert fake_openai.count("files.create", "fault:429") == 2 and fake_openai.uploads == 1
    assert fake_openai.count("jobs.create", "fault:500") == 1 and fake_openai.jobs_created == 1
    assert fake_openai.count("jobs.retrieve", "hang") == 1


def test_persistent_server_error_is_a_typed_error_with_the_api_message(fake_openai, pm, tmp_path):
    from finetunekit.backends.openai.job import OpenAIRequestError

    fake_openai.fail("files.create", status=503, times=None, retry_after=0.01, message="upstream overloaded")
    with pytest.raises(OpenAIRequestError, match="upstream overloaded") as caught:
        fake_trainer(fake_openai, pm, max_retries=2).train(make_examples(12), run_dir=tmp_path)
    assert caught.value.status_code == 503
    assert fake_openai.count("files.create", "fault:503") == 3


def _interrupted_run(fake, pm, run_dir, polls: int):
    """A trainer whose polling of a never-ending job is interrupted by Ctrl-C; and the job id."""
    fake.keep_next_job_running()
    trainer = fake_trainer(fake, pm)
    trainer.sleep = _interrupt_after(polls)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(make_examples(12), run_dir=run_dir)
    job_id = json.loads((run_dir / STATE_FILE).read_text())["job_id"]
    assert fake.job(job_id)["status"] == "running"
    return trainer, job_id


def test_cancel_through_the_library(fake_openai, pm, tmp_path):
    trainer, job_id = _interrupted_run(fake_openai, pm, tmp_path, polls=3)
    assert trainer.cancel(tmp_path) == "cancelled"
    assert fake_openai.job(job_id)["status"] == "cancelled"
    with pytest.raises(OpenAIJobCancelledError):
        trainer.train(make_examples(12), run_dir=tmp_path)
    assert fake_openai.jobs_created == 1


def test_keyboard_interrupt_leaves_job_running_and_rerun_reattaches(fake_openai, pm, tmp_path):
    trainer, job_id = _interrupted_run(fake_openai, pm, tmp_path, polls=2)
    assert any("keeps running" in line and str(tmp_path) in line for line in trainer.lines)
    assert job_id == fake_openai.job_ids()[0]

    fake_openai.complete_job(job_id)
    again = fake_trainer(fake_openai, pm)
    tuned = again.train(make_examples(12), run_dir=tmp_path)
    assert tuned.details["job_id"] == job_id
    assert fake_openai.uploads == 1 and fake_openai.jobs_created == 1
    assert any("reattaching" in line for line in again.lines)


def test_rerun_with_other_examples_is_refused(fake_openai, pm, tmp_path):
    fake_trainer(fake_openai, pm).train(make_examples(12), run_dir=tmp_path)
    from finetunekit.errors import ConfigError

    with pytest.raises(ConfigError, match="other examples"):
        fake_trainer(fake_openai, pm).train(make_examples(13), run_dir=tmp_path)
    assert fake_openai.jobs_created == 1


def test_job_created_by_a_run_killed_before_recording_it_is_found(fake_openai, pm, tmp_path):
    # A first run uploads, then its job creation fails, leaving a record without a job id.
    fake_openai.fail("jobs.create", status=400, times=None, message="rejected")
    with pytest.raises(Exception, match="rejected"):
        fake_trainer(fake_openai, pm).train(make_examples(12), run_dir=tmp_path)
    fake_openai.clear_faults()
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["job_id"] is None and state["training_file_id"]
    # The server had in fact created the job (its reply was lost): it carries the run's token.
    client = fake_openai.client()
    client.fine_tuning.jobs.create(model=state["base_model"], training_file=state["training_file_id"],
                                   metadata={"finetunekit_run": state["run_token"]})
    tuned = fake_trainer(fake_openai, pm).train(make_examples(12), run_dir=tmp_path)
    assert fake_openai.jobs_created == 1 and fake_openai.uploads == 1
    assert tuned.details["job_id"] == fake_openai.job_ids()[0]


def test_api_key_never_in_run_dir_or_messages(fake_openai, pm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_KEY", fake_openai.api_key)
    trainer = fake_trainer(fake_openai, pm, client=None, base_url=fake_openai.url, api_key_env="FAKE_OPENAI_KEY")
    tuned = trainer.train(make_examples(12), run_dir=tmp_path / "ok")
    fake_openai.fail_next_job("server_error", "boom")
    with pytest.raises(OpenAIJobFailedError) as failed:
        trainer.train(make_examples(11), run_dir=tmp_path / "failed")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 6
    key = fake_openai.api_key.encode()
    for path in files:
        assert key not in path.read_bytes(), path
    texts = [*trainer.lines, str(failed.value), repr(trainer), tuned.model_dump_json()]
    assert all(fake_openai.api_key not in text for text in texts)


def _interrupt_after(polls: int):
    calls = {"n": 0}

    def sleep(_seconds: float) -> None:
        calls["n"] += 1
        if calls["n"] >= polls:
            raise KeyboardInterrupt

    return sleep


def test_dry_run_estimates_cost_and_sends_nothing(fake_openai, pm, tmp_path):
    trainer = fake_trainer(fake_openai, pm)
    report = trainer.dry_run(make_examples(20), run_dir=tmp_path)
    assert report.ok and report.n_examples == 20 and report.n_epochs == 5  # 20 × 5 ≥ 100
    assert report.billed_tokens == report.tokens_per_epoch * 5 > 0
    assert report.estimated_cost_usd == pytest.approx(report.billed_tokens / 1e6 * 3.0)
    bad = trainer.dry_run([{"messages": [{"role": "user", "content": "x"}]}] * 12, run_dir=tmp_path / "bad")
    assert not bad.ok and "assistant" in " ".join(bad.errors)
    assert fake_openai.count(outcome=None) == 0
    assert (tmp_path / "dry_run.json").exists() and (tmp_path / "train.jsonl").exists()


@pytest.mark.skipif(not REAL_ROWS.exists(), reason="real AmazonTitles rows not present")
def test_real_amazon_rows_train_and_are_answered(fake_openai, pm, tmp_path):
    examples = real_examples(30)
    tuned = fake_trainer(fake_openai, pm).train(examples, run_dir=tmp_path)
    uploaded = fake_openai.file_bytes(tuned.details["training_file"]).decode("utf-8")
    assert [json.loads(line) for line in uploaded.splitlines()] == examples
    chat = tuned.chat_model(plugins=pm, client=fake_openai.client(), progress=False)
    questions = [e["messages"][0]["content"] for e in examples]
    assert chat.answer(questions) == [e["messages"][1]["content"] for e in examples]


def test_chat_model_of_a_model_trained_on_another_endpoint_uses_that_endpoint_and_key(
        fake_openai, pm, tmp_path, monkeypatch):
    monkeypatch.setenv("PROVIDER_KEY", fake_openai.api_key)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-key-must-not-leave")  # the fake refuses it (401)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    examples = make_examples(12)
    trainer = fake_trainer(fake_openai, pm, client=None, base_url=fake_openai.url, api_key_env="PROVIDER_KEY")
    tuned = trainer.train(examples, run_dir=tmp_path)
    chat = tuned.chat_model(plugins=pm, progress=False)
    assert chat.answer([examples[0]["messages"][0]["content"]]) == [examples[0]["messages"][1]["content"]]
    assert tuned.chat_options["api_key_env"] == "PROVIDER_KEY"
    assert fake_openai.count("chat.completions", outcome="ok") == 1
    assert fake_openai.count("chat.completions", outcome=None) == 1  # no request was refused for its key


def test_chat_model_of_a_model_trained_through_a_client_goes_to_that_clients_endpoint(
        fake_openai, pm, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    examples = make_examples(12)
    tuned = fake_trainer(fake_openai, pm).train(examples, run_dir=tmp_path)
    chat = tuned.chat_model(plugins=pm, progress=False, max_retries=0)
    assert chat.answer([examples[1]["messages"][0]["content"]]) == [examples[1]["messages"][1]["content"]]
    assert tuned.chat_options["base_url"] == str(fake_openai.client().base_url)
