"""The openai chat model's Batch API path, through the real SDK against the fake server."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from finetunekit.backends.openai.batch_state import (
    BatchCancelledError,
    BatchFailedError,
    BatchLinesError,
    BatchRecord,
)
from finetunekit.errors import ConfigError
from finetunekit.registry import get_chat_model
from finetunekit.testing import LineFailure
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from openai_helpers import fake_batch_chat, fake_chat


def _questions(n: int, prefix: str = "Question") -> list[str]:
    return [f"{prefix} number {i}?" for i in range(n)]


def _expected(questions: list[str]) -> list[str]:
    return [f"As a general assistant I know little about this: {q}" for q in questions]


def _asked(fake, batch_id: str) -> list[str]:
    return [line["body"]["messages"][-1]["content"] for line in fake.batch_input(batch_id)]


@pytest.fixture
def cache_dir(tmp_path):
    """The answer cache directory: in memory where the machine has /dev/shm (1,000 fsynced
    cache files take seconds on a disk), else under tmp_path."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path / "cache"
        return
    directory = Path(tempfile.mkdtemp(prefix="finetunekit-batch-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_1000_questions_answered_in_order_through_one_batch_then_a_cached_rerun_sends_nothing(
        fake_openai, pm, cache_dir):
    questions = _questions(1000)
    fake_openai.slow_next_batch(polls=4)
    chat = fake_batch_chat(fake_openai, pm, cache_dir)

    answers = chat.answer(questions)

    assert answers == _expected(questions)
    assert fake_openai.batches_created == 1 and fake_openai.uploads == 1 and fake_openai.chat_requests == 0
    assert fake_openai.count("batches.retrieve") >= 4, "the batch was polled while in progress"
    [batch_id] = fake_openai.batch_ids()
    lines = fake_openai.batch_input(batch_id)
    assert [line["body"]["messages"] for line in lines] == [[{"role": "user", "content": q}] for q in questions]
    assert {(line["method"], line["url"]) for line in lines} == {("POST", "/v1/chat/completions")}
    assert len({line["custom_id"] for line in lines}) == 1000
    assert lines[0]["body"]["model"] == "gpt-4o-mini" and lines[0]["body"]["temperature"] == 0.0
    output = fake_openai.file_bytes(fake_openai.batch(batch_id)["output_file_id"]).decode().splitlines()
    assert [json.loads(o)["custom_id"] for o in output] != [line["custom_id"] for line in lines], (
        "the fake shuffles its output lines, so the order must come from the custom_ids")
    record = json.loads(next(BatchRecord.directory(cache_dir).glob("*.json")).read_text())
    assert record["batch_id"] == batch_id and record["collected"] and record["status"] == "completed"

    sent = fake_openai.count(outcome=None)
    again = fake_batch_chat(fake_openai, pm, cache_dir)
    assert again.answer(questions) == answers
    assert fake_openai.count(outcome=None) == sent, "a cached rerun sends no request at all"


def test_duplicate_questions_are_sent_once_and_answered_at_each_position(fake_openai, pm, cache_dir):
    questions = ["a?", "b?", "a?", "c?", "b?"]
    assert fake_batch_chat(fake_openai, pm, cache_dir).answer(questions) == _expected(questions)
    assert sorted(_asked(fake_openai, fake_openai.batch_ids()[0])) == ["a?", "b?", "c?"]


def test_batch_and_online_share_the_answer_cache(fake_openai, pm, cache_dir):
    questions = _questions(12)
    fake_chat(fake_openai, pm, answer_cache_dir=str(cache_dir)).answer(questions[:5])
    answers = fake_batch_chat(fake_openai, pm, cache_dir).answer(questions)
    assert answers == _expected(questions)
    assert _asked(fake_openai, fake_openai.batch_ids()[0]) == questions[5:]


def test_batch_mode_without_an_answer_cache_is_refused_before_any_request(fake_openai, pm):
    chat = get_chat_model("openai", plugins=pm, client=fake_openai.client(), batch=True, progress=False)
    with pytest.raises(ConfigError, match="answer_cache_dir"):
        chat.answer(["hi"])
    assert fake_openai.count(outcome=None) == 0


def test_failed_lines_are_retried_in_a_second_smaller_batch(fake_openai, pm, cache_dir):
    questions = _questions(20)
    fake_openai.fail_next_batch_lines({3: 500, 7: 429, 11: LineFailure(None, "request_timeout", "timed out")})
    chat = fake_batch_chat(fake_openai, pm, cache_dir)

    assert chat.answer(questions) == _expected(questions)

    first, second = fake_openai.batch_ids()
    assert len(fake_openai.batch_input(first)) == 20
    assert _asked(fake_openai, second) == [questions[3], questions[7], questions[11]]
    assert any("3 request(s) failed with a retryable error" in line for line in chat.lines)


def test_a_line_a_retry_cannot_fix_is_reported_by_line_and_a_rerun_sends_only_it(fake_openai, pm, cache_dir):
    questions = _questions(10)
    fake_openai.fail_next_batch_lines({4: LineFailure(400, "invalid_prompt", "The prompt was flagged.")})
    with pytest.raises(BatchLinesError) as caught:
        fake_batch_chat(fake_openai, pm, cache_dir).answer(questions)

    [line] = caught.value.lines
    assert line.custom_id.startswith("q4-") and line.question == questions[4]
    assert (line.status_code, line.code, line.message) == (400, "invalid_prompt", "The prompt was flagged.")
    assert line.custom_id in str(caught.value) and questions[4] in str(caught.value)
    assert fake_openai.batches_created == 1, "a 400 is not retried"

    assert fake_batch_chat(fake_openai, pm, cache_dir).answer(questions) == _expected(questions)
    assert _asked(fake_openai, fake_openai.batch_ids()[-1]) == [questions[4]]


def test_retries_are_bounded(fake_openai, pm, cache_dir):
    fake_openai.fail_next_batch_lines({0: 500, 1: 500})
    fake_openai.fail_next_batch_lines({0: 503})
    with pytest.raises(BatchLinesError) as caught:
        fake_batch_chat(fake_openai, pm, cache_dir, batch_retries=1).answer(_questions(5))
    assert fake_openai.batches_created == 2
    assert [(line.question, line.status_code) for line in caught.value.lines] == [(_questions(5)[0], 503)]


def test_an_expired_batch_keeps_its_answers_and_sends_the_rest_again(fake_openai, pm, cache_dir):
    questions = _questions(10)
    fake_openai.expire_next_batch(answered=6)
    assert fake_batch_chat(fake_openai, pm, cache_dir).answer(questions) == _expected(questions)
    first, second = fake_openai.batch_ids()
    assert fake_openai.batch(first)["status"] == "expired"
    assert _asked(fake_openai, second) == questions[6:]


def test_an_expired_batch_without_retries_is_reported_with_batch_expired(fake_openai, pm, cache_dir):
    questions = _questions(10)
    fake_openai.expire_next_batch(answered=6)
    with pytest.raises(BatchLinesError) as caught:
        fake_batch_chat(fake_openai, pm, cache_dir, batch_retries=0).answer(questions)
    assert [(line.question, line.code) for line in caught.value.lines] == [(q, "batch_expired") for q in questions[6:]]
    assert fake_batch_chat(fake_openai, pm, cache_dir).answer(questions) == _expected(questions)
    assert _asked(fake_openai, fake_openai.batch_ids()[-1]) == questions[6:]


def test_a_failed_batch_is_a_typed_error_naming_the_line(fake_openai, pm, cache_dir):
    questions = _questions(4)
    fake_openai.fail_next_batch("invalid_request", "Line 2: the body is not valid.", line=2)
    with pytest.raises(BatchFailedError) as caught:
        fake_batch_chat(fake_openai, pm, cache_dir).answer(questions)
    assert caught.value.errors[0]["line"] == 2 and "Line 2: the body is not valid." in str(caught.value)
    named = [line for line in caught.value.lines if line.code == "invalid_request"]
    assert [line.question for line in named] == [questions[1]]
    assert len(caught.value.lines) == 4 and fake_openai.batches_created == 1


def test_a_batch_cancelled_by_the_provider_raises_and_keeps_the_answers_it_gave(fake_openai, pm, cache_dir):
    questions = _questions(10)
    fake_openai.cancel_next_batch(answered=3)
    with pytest.raises(BatchCancelledError) as caught:
        fake_batch_chat(fake_openai, pm, cache_dir).answer(questions)
    assert {line.code for line in caught.value.lines} == {"batch_cancelled"} and len(caught.value.lines) == 7
    assert fake_openai.batches_created == 1, "a cancelled batch is not sent again by itself"
    assert fake_batch_chat(fake_openai, pm, cache_dir).answer(questions) == _expected(questions)
    assert _asked(fake_openai, fake_openai.batch_ids()[-1]) == questions[3:]


def test_429_and_5xx_on_upload_create_and_retrieve_are_retried_without_a_second_batch(fake_openai, pm, cache_dir):
    fake_openai.fail("files.create", status=500, times=1, retry_after=0.001)
    fake_openai.rate_limit("batches.create", times=2, retry_after=0.001)
    fake_openai.fail("batches.create", status=502, times=1, retry_after=0.001)
    fake_openai.fail("batches.retrieve", status=503, times=2, retry_after=0.001)
    questions = _questions(8)
    assert fake_batch_chat(fake_openai, pm, cache_dir).answer(questions) == _expected(questions)
    assert fake_openai.batches_created == 1 and fake_openai.uploads == 1
    assert fake_openai.count("batches.create", outcome=None) == 4
    assert fake_openai.count("batches.retrieve", outcome="fault:503") == 2


def test_an_interrupted_wait_reattaches_and_a_larger_rerun_sends_only_the_new_questions(fake_openai, pm, cache_dir):
    questions = _questions(15)
    fake_openai.keep_next_batch_running()
    chat = fake_batch_chat(fake_openai, pm, cache_dir)

    def interrupted(seconds):
        raise KeyboardInterrupt

    chat.sleep = interrupted
    with pytest.raises(KeyboardInterrupt):
        chat.answer(questions[:10])
    assert any("keeps running on the server" in line for line in chat.lines)
    [first] = fake_openai.batch_ids()
    fake_openai.complete_batch(first)

    rerun = fake_batch_chat(fake_openai, pm, cache_dir)
    assert rerun.answer(questions) == _expected(questions)
    assert fake_openai.batches_created == 2 and _asked(fake_openai, fake_openai.batch_ids()[1]) == questions[10:]
    assert any(f"reattaching to batch {first}" in line for line in rerun.lines)


def test_a_run_killed_between_create_and_record_finds_its_batch(fake_openai, pm, cache_dir, monkeypatch):
    questions = _questions(6)
    real_save = BatchRecord.save

    def die_once_the_batch_exists(self, directory):
        if self.batch_id is not None:
            raise SystemExit("killed")  # the process dies before the batch id reaches the disk
        real_save(self, directory)

    monkeypatch.setattr(BatchRecord, "save", die_once_the_batch_exists)
    with pytest.raises(SystemExit):
        fake_batch_chat(fake_openai, pm, cache_dir).answer(questions)
    monkeypatch.undo()
    [record] = BatchRecord.open_records(BatchRecord.directory(cache_dir))
    assert record.batch_id is None and record.input_file_id is not None and fake_openai.batches_created == 1

    rerun = fake_batch_chat(fake_openai, pm, cache_dir)
    assert rerun.answer(questions) == _expected(questions)
    assert fake_openai.batches_created == 1 and fake_openai.uploads == 1
    assert any("created by an interrupted run" in line for line in rerun.lines)


def test_requests_beyond_batch_max_requests_make_several_batches(fake_openai, pm, cache_dir):
    questions = _questions(7)
    assert fake_batch_chat(fake_openai, pm, cache_dir, batch_max_requests=3).answer(questions) == _expected(questions)
    assert [len(fake_openai.batch_input(b)) for b in fake_openai.batch_ids()] == [3, 3, 1]


def test_logprob_confidence_through_a_batch_equals_the_online_one(fake_openai, pm, cache_dir, tmp_path):
    questions = _questions(6)
    fake_openai.script_logprobs({"general": -4.0})
    options = {"logprobs": True, "confidence_tokens": 5}
    online = fake_chat(fake_openai, pm, answer_cache_dir=str(tmp_path / "online"), **options).answer_scored(questions)
    batched = fake_batch_chat(fake_openai, pm, cache_dir, **options).answer_scored(questions)
    assert [(a.text, a.confidence) for a in batched] == [(a.text, a.confidence) for a in online]
    assert all(a.confidence is not None and a.confidence < -0.5 for a in batched)
    assert all(line["body"]["logprobs"] is True for line in fake_openai.batch_input(fake_openai.batch_ids()[0]))

    threshold = fake_batch_chat(fake_openai, pm, cache_dir, abstain_below=0.0, **options).answer_scored(questions)
    assert all(a.abstained for a in threshold)


def test_cost_estimate_halves_the_price_in_batch_mode_and_counts_only_uncached_questions(fake_openai, pm, cache_dir):
    from finetunekit.backends.openai.cost import CHAT_PRICE_PER_MILLION, chat_price_per_million

    questions = _questions(40)
    online = fake_chat(fake_openai, pm, answer_cache_dir=str(cache_dir), max_tokens=100).cost_estimate(questions)
    batched = fake_batch_chat(fake_openai, pm, cache_dir, max_tokens=100).cost_estimate(questions)
    price_in, price_out = CHAT_PRICE_PER_MILLION["gpt-4o-mini"]
    assert online.n_requests == 40 and online.max_output_tokens == 4000 and online.input_tokens > 40 * 5
    assert online.estimated_cost_usd == pytest.approx((online.input_tokens * price_in + 4000 * price_out) / 1e6)
    assert batched.estimated_cost_usd == pytest.approx(online.estimated_cost_usd / 2)
    assert "Batch API (half price)" in str(batched)

    fake_batch_chat(fake_openai, pm, cache_dir, max_tokens=100).answer(questions[:30])
    rest = fake_batch_chat(fake_openai, pm, cache_dir, max_tokens=100).cost_estimate(questions + questions[:5])
    assert rest.n_requests == 10, "cached and repeated questions cost nothing"
    assert fake_openai.batches_created == 1, "estimating sends nothing"
    assert chat_price_per_million("ft:gpt-4o-mini-2024-07-18:org::abc") == (0.30, 1.20)
    assert chat_price_per_million("gpt-4o-mini-2024-07-18") == (price_in, price_out)
    assert chat_price_per_million("llama-3-8b") is None
