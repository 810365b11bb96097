"""The fake server's Batch API, exercised through the real SDK with strict response validation."""

from __future__ import annotations

import json

import openai
import pytest

from finetunekit.testing import BatchPlan, LineFailure
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture


def _input(client, questions, *, url="/v1/chat/completions", custom_ids=None):
    lines = [{"custom_id": custom_ids[i] if custom_ids else f"c{i}", "method": "POST", "url": url,
              "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": q}]}}
             for i, q in enumerate(questions)]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("batch.jsonl", data), purpose="batch")


def _create(client, file_id, **kwargs):
    return client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h",
                                 **kwargs)


def _lines(client, file_id):
    return [json.loads(line) for line in client.files.content(file_id).read().decode().splitlines()]


def test_a_batch_walks_its_statuses_per_poll_and_answers_every_line(fake_openai):
    client = fake_openai.client()
    fake_openai.slow_next_batch(polls=2)
    batch = _create(client, _input(client, ["a?", "b?", "c?"]).id, metadata={"run": "x"})
    statuses = [batch.status] + [client.batches.retrieve(batch.id).status for _ in range(5)]
    assert statuses == ["validating", "in_progress", "in_progress", "finalizing", "completed", "completed"]
    done = client.batches.retrieve(batch.id)
    assert done.request_counts.completed == 3 and done.error_file_id is None and done.completed_at
    assert done.metadata == {"run": "x"} and client.files.retrieve(done.output_file_id).purpose == "batch_output"
    answers = {line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"]
               for line in _lines(client, done.output_file_id)}
    assert answers == {f"c{i}": f"As a general assistant I know little about this: {q}"
                       for i, q in enumerate(["a?", "b?", "c?"])}
    assert [b.id for b in client.batches.list()] == [batch.id]
    assert fake_openai.chat_requests == 0 and fake_openai.batch_lines_run == 3


def test_failed_lines_go_to_the_error_file(fake_openai):
    client = fake_openai.client()
    fake_openai.fail_next_batch_lines({1: 500, 2: LineFailure(None, "request_timeout", "too slow")})
    batch = _create(client, _input(client, ["a?", "b?", "c?"]).id)
    fake_openai.complete_batch(batch.id)
    done = client.batches.retrieve(batch.id)
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 2)
    errors = {line["custom_id"]: line for line in _lines(client, done.error_file_id)}
    assert errors["c1"]["response"]["status_code"] == 500 and errors["c1"]["error"] is None
    assert errors["c2"]["response"] is None and errors["c2"]["error"]["code"] == "request_timeout"


@pytest.mark.parametrize(("outcome", "code"), [("expired", "batch_expired"), ("cancelled", "batch_cancelled")])
def test_an_expired_or_cancelled_batch_has_partial_results(fake_openai, outcome, code):
    client = fake_openai.client()
    fake_openai.plan_next_batch(BatchPlan(outcome=outcome, answered=2))
    batch = _create(client, _input(client, ["a?", "b?", "c?", "d?"]).id)
    fake_openai.complete_batch(batch.id, outcome)
    done = client.batches.retrieve(batch.id)
    assert done.status == outcome and getattr(done, f"{outcome}_at")
    assert sorted(line["custom_id"] for line in _lines(client, done.output_file_id)) == ["c0", "c1"]
    assert {line["custom_id"]: line["error"]["code"] for line in _lines(client, done.error_file_id)} == {
        "c2": code, "c3": code}


def test_an_invalid_input_file_fails_the_batch_naming_the_line(fake_openai):
    client = fake_openai.client()
    batch = _create(client, _input(client, ["a?", "b?"], custom_ids=["same", "same"]).id)
    done = client.batches.retrieve(batch.id)
    assert done.status == "failed" and done.output_file_id is None
    assert (done.errors.data[0].code, done.errors.data[0].line) == ("duplicate_custom_id", 2)


def test_cancel_endpoint_and_create_checks(fake_openai):
    client = fake_openai.client()
    fake_openai.keep_next_batch_running()
    batch = _create(client, _input(client, ["a?"]).id)
    assert [client.batches.retrieve(batch.id).status for _ in range(3)] == ["in_progress"] * 3
    assert client.batches.cancel(batch.id).status == "cancelling"
    assert client.batches.retrieve(batch.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)
    tune = client.files.create(file=("t.jsonl", b"{}\n"), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        _create(client, tune.id)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch-missing")


def test_faults_hit_the_batch_routes(fake_openai):
    client = fake_openai.client(max_retries=0)
    fake_openai.rate_limit("batches.create", times=1)
    with pytest.raises(openai.RateLimitError):
        _create(client, _input(client, ["a?"]).id)
    assert fake_openai.batches_created == 0
