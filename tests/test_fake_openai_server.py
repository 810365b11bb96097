"""The fake OpenAI server itself, exercised through the real SDK with strict response validation."""

from __future__ import annotations

import json

import openai
import pytest

from finetunekit.testing import FakeOpenAI, JobPlan, fresh_plugin_manager
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from finetunekit.backends.openai.results import decode_result_file
from openai_helpers import make_examples


def _upload(client, examples):
    data = "\n".join(json.dumps(e) for e in examples).encode()
    return client.files.create(file=("train.jsonl", data), purpose="fine-tune")


def test_files_roundtrip(fake_openai):
    client = fake_openai.client()
    uploaded = _upload(client, make_examples(3))
    assert uploaded.purpose == "fine-tune" and uploaded.bytes > 0
    assert client.files.retrieve(uploaded.id).filename == "train.jsonl"
    assert client.files.content(uploaded.id).read() == fake_openai.file_bytes(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-missing")


def test_job_advances_per_poll_with_events_checkpoints_and_results(fake_openai):
    client = fake_openai.client()
    training = _upload(client, make_examples(20))
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id,
                                         method={"type": "supervised", "supervised": {
                                             "hyperparameters": {"n_epochs": 3, "batch_size": 4}}})
    statuses = [job.status] + [client.fine_tuning.jobs.retrieve(job.id).status for _ in range(4)]
    assert statuses == ["validating_files", "queued", "running", "succeeded", "succeeded"]
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.hyperparameters.batch_size == 4 and done.trained_tokens > 0
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=3))  # auto-paginates
    assert len(events) == len({e.id for e in events}) > 3
    assert events[0].message == "The job has successfully completed"
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert [c.step_number for c in checkpoints] == [15, 10, 5]
    csv_text = decode_result_file(client.files.content(done.result_files[0]).read())
    assert csv_text.splitlines()[0].startswith("step,train_loss,train_accuracy,valid_loss")
    assert len(csv_text.splitlines()) == 1 + 15
    assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]


def test_manual_clock_and_scripted_outcomes():
    with FakeOpenAI(advance="manual") as fake:
        client = fake.client()
        training = _upload(client, make_examples(10))
        fake.fail_next_job("invalid_training_file", "bad line 3", "training_file")
        failing = client.fine_tuning.jobs.create(model="m", training_file=training.id)
        fake.plan_next_job(JobPlan.stay_running())
        running = client.fine_tuning.jobs.create(model="m", training_file=training.id)
        assert client.fine_tuning.jobs.retrieve(failing.id).status == "validating_files"
        fake.advance(steps=10)
        failed = client.fine_tuning.jobs.retrieve(failing.id)
        assert failed.status == "failed" and failed.error.code == "invalid_training_file"
        assert failed.error.message == "bad line 3"
        assert client.fine_tuning.jobs.retrieve(running.id).status == "running"
        assert client.fine_tuning.jobs.cancel(running.id).status == "cancelled"
        with pytest.raises(openai.BadRequestError):
            client.fine_tuning.jobs.cancel(running.id)


def test_malformed_training_file_fails_the_job_like_openai(fake_openai):
    client = fake_openai.client()
    broken = client.files.create(file=("t.jsonl", b'{"messages": []}\nnot json\n'), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="m", training_file=broken.id)
    fake_openai.advance(job.id, steps=5)
    assert fake_openai.job(job.id)["error"]["code"] == "invalid_training_file"
    assert "Line 2" in fake_openai.job(job.id)["error"]["message"]


def test_unknown_status_reaches_a_lenient_client(fake_openai):
    fake_openai.next_job_with_unknown_status("paused_for_review")
    client = fake_openai.client(strict=False)
    job = client.fine_tuning.jobs.create(model="m", training_file=_upload(client, make_examples(10)).id)
    statuses = [client.fine_tuning.jobs.retrieve(job.id).status for _ in range(4)]
    assert statuses == ["queued", "paused_for_review", "running", "succeeded"]


def test_rate_limit_with_retry_after_is_retried_by_the_sdk(fake_openai):
    rule = fake_openai.rate_limit("chat.completions", times=3, retry_after=0.01)
    client = fake_openai.client(max_retries=3)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content.endswith("x") and rule.fired == 3
    outcomes = [r.outcome for r in fake_openai.requests("chat.completions")]
    assert outcomes == ["fault:429"] * 3 + ["ok"]


def test_errors_surface_with_the_api_message(fake_openai):
    fake_openai.fail("chat.completions", status=500, times=None, message="kaput", retry_after=0.001)
    client = fake_openai.client(max_retries=1)
    with pytest.raises(openai.InternalServerError, match="kaput"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert fake_openai.count("chat.completions", "fault:500") == 2


def test_hang_past_the_client_timeout(fake_openai):
    fake_openai.hang("chat.completions", times=None, seconds=5)
    client = fake_openai.client(max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_wrong_api_key_is_rejected(fake_openai):
    client = openai.OpenAI(api_key="sk-wrong", base_url=fake_openai.url, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.files.list()


def test_fault_rules_validate_their_route():
    with pytest.raises(ValueError, match="unknown route"):
        FakeOpenAI().fail("chat.complete")


def test_fresh_plugin_manager_has_the_openai_components():
    from finetunekit.registry import registry_for

    pm = fresh_plugin_manager()
    assert "openai" in registry_for("register_trainers", pm)
    assert "openai" in registry_for("register_chat_models", pm)
