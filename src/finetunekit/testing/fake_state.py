"""The state behind the fake OpenAI server: files, fine-tuning jobs, chat completions, batches.

Every response body is built by validating a dict with the ``openai`` SDK's own pydantic
types and dumping it back, so a change in the SDK's contract breaks the fake loudly.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from typing import Any, Mapping

from finetunekit.testing.fake_batches import FakeBatches
from finetunekit.testing.fake_jobs import (
    FakeJob,
    JobPlan,
    count_tokens,
    encode_result_file,
    parse_training_file,
)

NO_ANSWER = "I don't have information about that."


class ApiError(Exception):
    """An error the fake answers with, in OpenAI's ``{"error": {...}}`` shape."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 param: str | None = None, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.type = status, message, code, param, type

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def cursor_page(items: list[dict[str, Any]], item_type: Any, after: str | None, limit: int) -> dict[str, Any]:
    """One page of ``items`` after the id ``after``, validated as the SDK's ``SyncCursorPage``."""
    from openai.pagination import SyncCursorPage

    start = 0
    if after:
        ids = [item["id"] for item in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    chunk = items[start:start + limit]
    page = {"object": "list", "data": chunk, "has_more": start + limit < len(items)}
    SyncCursorPage[item_type].model_validate(page)
    return page


def answer_tokens(answer: str) -> list[str]:
    """The fake's tokens of ``answer``: its words, each after the first with its leading space
    (joined, they give back ``answer``)."""
    words = answer.split(" ")
    return [token for token in [words[0]] + [" " + word for word in words[1:]] if token]


def token_logprob(token: str, known: bool, scripted: Mapping[str, float] | None = None) -> float:
    """The fake's deterministic log-probability of ``token``: ``scripted[token.strip()]`` when
    scripted, else from a hash of the token — in [-0.5, -0.1] in an answer the model was
    trained on (``known``), in [-3.0, -1.0] otherwise, so a fine-tuned model is surer of what it
    learned than of :data:`NO_ANSWER` or a base model's generic answer."""
    if scripted and token.strip() in scripted:
        return float(scripted[token.strip()])
    unit = int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest()[:4], "big") / 0xFFFFFFFF
    return round(-0.1 - 0.4 * unit, 6) if known else round(-1.0 - 2.0 * unit, 6)


def last_user_message(messages: list[dict[str, Any]]) -> str:
    """The content of the last user message (``""`` if there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class FakeAPIState:
    """Files, jobs and fine-tuned models of one fake server; every method is thread-safe.

    ``advance_on_poll``: each ``jobs.retrieve`` moves the job one status further (otherwise
    only :meth:`advance` does). ``results_base64``: serve result files base64-encoded, as
    OpenAI does.
    """

    def __init__(self, *, advance_on_poll: bool = True, results_base64: bool = True) -> None:
        self.lock = threading.RLock()
        self.advance_on_poll = advance_on_poll
        self.results_base64 = results_base64
        self.files: dict[str, dict[str, Any]] = {}
        self.file_data: dict[str, bytes] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.answers: dict[str, dict[str, str]] = {}  # fine-tuned model id -> question -> answer
        self.next_plans: list[JobPlan] = []
        self.token_logprobs: dict[str, float] = {}  # scripted logprob per (stripped) token
        self._ids = itertools.count(1)
        self.clock = 1_700_000_000
        self.batches = FakeBatches(self)

    def new_id(self, prefix: str) -> str:
        """A fresh, deterministic object id such as ``file-fake000001``."""
        return f"{prefix}-fake{next(self._ids):06d}"

    def tick(self) -> int:
        """Advance the fake clock by one second and return it."""
        self.clock += 1
        return self.clock

    # ----------------------------------------------------------------- files
    def create_file(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        """Store an uploaded file and return its ``FileObject``."""
        from openai.types import FileObject

        with self.lock:
            file_id = self.new_id("file")
            meta = {"id": file_id, "object": "file", "bytes": len(data), "created_at": self.tick(),
                    "filename": filename, "purpose": purpose, "status": "processed"}
            self.files[file_id] = FileObject.model_validate(meta).model_dump(mode="json")
            self.file_data[file_id] = data
            return self.files[file_id]

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        """The ``FileObject`` of ``file_id`` (404 if unknown)."""
        with self.lock:
            if file_id not in self.files:
                raise ApiError(404, f"No such File object: {file_id}", param="id")
            return self.files[file_id]

    def file_content(self, file_id: str) -> bytes:
        """The bytes of ``file_id``."""
        with self.lock:
            self.retrieve_file(file_id)
            return self.file_data[file_id]

    def list_files(self, after: str | None, limit: int, purpose: str | None = None) -> dict[str, Any]:
        """Files (of ``purpose``, when given), newest first."""
        from openai.types import FileObject

        with self.lock:
            files = [f for f in reversed(self.files.values()) if purpose is None or f["purpose"] == purpose]
            return cursor_page(files, FileObject, after, limit)

    # ------------------------------------------------------------------ jobs
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a job following the next scripted plan (or the succeeding one)."""
        with self.lock:
            for key in ("model", "training_file"):
                if not body.get(key):
                    raise ApiError(400, f"Missing required parameter: '{key}'.", param=key)
            for key in ("training_file", "validation_file"):
                file_id = body.get(key)
                if file_id and file_id not in self.files:
                    raise ApiError(400, f"invalid {key} {file_id!r}: no such file", param=key,
                                   code="invalid_file")
            examples, problem = parse_training_file(self.file_data[body["training_file"]])
            plan = self.next_plans.pop(0) if self.next_plans else JobPlan.succeed()
            if problem:
                plan = JobPlan.fail("invalid_training_file", problem)
            job = FakeJob(id=self.new_id("ftjob"), request=dict(body), plan=plan,
                          created_at=self.tick(), n_examples=max(len(examples), 1),
                          n_tokens=count_tokens(examples), examples=examples)
            self.jobs[job.id] = job
            self._step(job)
            return job.to_api()

    def job(self, job_id: str) -> FakeJob:
        """The job ``job_id`` (404 if unknown)."""
        with self.lock:
            if job_id not in self.jobs:
                raise ApiError(404, f"Could not find fine-tuning job {job_id}", code="not_found",
                               param="fine_tuning_job_id")
            return self.jobs[job_id]

    def retrieve_job(self, job_id: str) -> dict[str, Any]:
        """The job, advanced one step first when ``advance_on_poll``."""
        with self.lock:
            job = self.job(job_id)
            if self.advance_on_poll:
                self._step(job)
            return job.to_api()

    def list_jobs(self, after: str | None, limit: int, metadata: dict[str, str]) -> dict[str, Any]:
        """Jobs, newest first, filtered by metadata key/values."""
        from openai.types.fine_tuning import FineTuningJob

        with self.lock:
            jobs = [j.to_api() for j in reversed(self.jobs.values())
                    if all((j.request.get("metadata") or {}).get(k) == v for k, v in metadata.items())]
            return cursor_page(jobs, FineTuningJob, after, limit)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a job that has not finished yet (400 if it has)."""
        with self.lock:
            job = self.job(job_id)
            if job.terminal:
                raise ApiError(400, f"Job {job_id} has already {job.status}; it cannot be cancelled.",
                               code="invalid_state")
            self._enter(job, "cancelled")
            return job.to_api()

    def job_events(self, job_id: str, after: str | None, limit: int) -> dict[str, Any]:
        """The job's events, newest first."""
        from openai.types.fine_tuning import FineTuningJobEvent

        with self.lock:
            return cursor_page(list(reversed(self.job(job_id).events)), FineTuningJobEvent, after, limit)

    def job_checkpoints(self, job_id: str, after: str | None, limit: int) -> dict[str, Any]:
        """The job's checkpoints, newest first."""
        from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

        with self.lock:
            return cursor_page(list(reversed(self.job(job_id).checkpoints)), FineTuningJobCheckpoint,
                               after, limit)

    def advance(self, job_id: str | None = None, steps: int = 1) -> None:
        """Move one job (default: every job) ``steps`` statuses along its plan."""
        with self.lock:
            for job in [self.job(job_id)] if job_id else list(self.jobs.values()):
                for _ in range(steps):
                    self._step(job)

    def complete_job(self, job_id: str, status: str = "succeeded") -> None:
        """Force a job into a terminal ``status`` now, whatever its plan says."""
        with self.lock:
            job = self.job(job_id)
            if not job.terminal:
                self._enter(job, status)

    def _step(self, job: FakeJob) -> None:
        if job.terminal or job.position >= len(job.plan.statuses) - 1:
            return
        job.position += 1
        self._enter(job, job.plan.statuses[job.position])

    def _enter(self, job: FakeJob, status: str) -> None:
        def store_result(csv_text: str) -> str:
            data = encode_result_file(csv_text, self.results_base64)
            return self.create_file("step_metrics.csv", "fine-tune-results", data)["id"]

        job.enter(status, self.tick(), self.new_id, store_result)
        if status == "succeeded":
            learned = {last_user_message(e["messages"]): _assistant_answer(e["messages"])
                       for e in job.examples}
            for checkpoint in job.checkpoints:
                self.answers[checkpoint["fine_tuned_model_checkpoint"]] = learned

    # ------------------------------------------------------------------ chat
    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """A deterministic chat completion.

        A fine-tuned model answers a trained question with the trained answer (else
        :data:`NO_ANSWER`); a base model answers with a fixed generic sentence. With
        ``"logprobs": true`` the choice carries each token's log-probability
        (:func:`answer_tokens`, :func:`token_logprob`; ``top_logprobs`` lists just the chosen
        token).
        """
        from openai.types.chat import ChatCompletion, ChatCompletionTokenLogprob
        from openai.types.chat.chat_completion import ChoiceLogprobs

        model = body.get("model")
        messages = body.get("messages")
        if not model or not isinstance(messages, list) or not messages:
            raise ApiError(400, "'model' and a non-empty 'messages' list are required.", param="messages")
        question = last_user_message(messages)
        want_logprobs, top = body.get("logprobs"), body.get("top_logprobs")
        if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20):
            raise ApiError(400, "'top_logprobs' must be an integer between 0 and 20.", param="top_logprobs")
        if top and want_logprobs is not True:
            raise ApiError(400, "'logprobs' must be set to true when 'top_logprobs' is used.", param="logprobs")
        with self.lock:
            if model.startswith("ft:") and model not in self.answers:
                raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                               code="model_not_found", param="model")
            learned = self.answers.get(model)
            completion_id = self.new_id("chatcmpl")
            created = self.clock
            scripted = dict(self.token_logprobs)
        known = learned is not None and question in learned
        answer = learned.get(question, NO_ANSWER) if learned is not None else (
            f"As a general assistant I know little about this: {question}")
        words = answer.split(" ")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if limit and len(words) > limit:
            answer, finish = " ".join(words[:limit]), "length"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
        completion_tokens = len(answer.split())
        logprobs = None
        if want_logprobs is True:
            content = []
            for token in answer_tokens(answer):
                logprob = token_logprob(token, known, scripted)
                encoded = list(token.encode("utf-8"))
                top_entries = [{"token": token, "logprob": logprob, "bytes": encoded}] if top else []
                content.append(ChatCompletionTokenLogprob.model_validate(
                    {"token": token, "logprob": logprob, "bytes": encoded, "top_logprobs": top_entries}))
            logprobs = ChoiceLogprobs(content=content, refusal=None).model_dump(mode="json")
        data = {
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": logprobs,
                         "message": {"role": "assistant", "content": answer, "refusal": None}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        return ChatCompletion.model_validate(data).model_dump(mode="json", exclude_none=True)


def _assistant_answer(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return str(message.get("content", ""))
    return NO_ANSWER
