"""Simulated Batch API for the fake OpenAI server (``/v1/batches`` over uploaded JSONL files).

A batch walks through its :class:`BatchPlan` one status per ``batches.retrieve`` (like a fake
fine-tuning job): ``validating`` → ``in_progress`` (``polls_in_progress`` times) → the outcome
(``completed`` through ``finalizing``, ``cancelled`` through ``cancelling``, ``expired``, or
``failed`` straight from ``validating``). When it ends, every input line is answered by the
fake's chat completion; the output file lists the answered lines in a shuffled order (the
real API promises no order either) and the error file the failed ones. Batches, files and
the completions inside output lines are validated with the ``openai`` SDK's own types.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetunekit.testing.fake_faults import ERROR_TYPES

if TYPE_CHECKING:
    from finetunekit.testing.fake_state import FakeAPIState

OUTCOMES = ("completed", "expired", "cancelled", "failed")
TERMINAL = ("completed", "expired", "cancelled", "failed")
SUPPORTED_ENDPOINTS = ("/v1/chat/completions",)
#: the codes the Batch API gives lines it never ran
UNRUN_CODES = {"expired": ("batch_expired", "This request could not be executed before the completion window expired."),
               "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled.")}


@dataclass(frozen=True)
class LineFailure:
    """How one input line fails: with an HTTP response (``status_code`` and an error body) or,
    when ``status_code`` is ``None``, with only the line's ``error`` object (``code``, ``message``)."""

    status_code: int | None = 500
    code: str = "server_error"
    message: str = "The fake server had an error while processing this request."


@dataclass
class BatchPlan:
    """How the next created batch behaves.

    ``outcome``: its final status; ``polls_in_progress``: retrievals it stays ``in_progress``
    (``None``: until :meth:`FakeOpenAI.complete_batch`); ``answered``: with ``expired`` or
    ``cancelled``, how many lines (the first ones) ran before it ended (default none);
    ``failed_lines``: input line index (0-based) → :class:`LineFailure`; ``error``: the
    ``errors.data`` entry of a ``failed`` batch (``code``, ``message``, ``line``).
    """

    outcome: str = "completed"
    polls_in_progress: int | None = 1
    answered: int = 0
    failed_lines: dict[int, LineFailure] = field(default_factory=dict)
    error: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown batch outcome {self.outcome!r}; expected one of {OUTCOMES}")

    def statuses(self) -> list[str]:
        """The statuses from creation to the end (without the endless ``in_progress``)."""
        if self.outcome == "failed":
            return ["validating", "failed"]
        middle = ["in_progress"] * max(1, self.polls_in_progress or 1)
        last = {"completed": ["finalizing", "completed"], "cancelled": ["cancelling", "cancelled"],
                "expired": ["expired"]}[self.outcome]
        return ["validating", *middle, *last]


@dataclass
class FakeBatch:
    """One simulated batch: its create request, its plan and where it is in it."""

    id: str
    request: dict[str, Any]
    plan: BatchPlan
    created_at: int
    n_lines: int
    position: int = 0
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0

    @property
    def terminal(self) -> bool:
        """Whether the batch has ended."""
        return self.status in TERMINAL

    def to_api(self) -> dict[str, Any]:
        """The batch as the API returns it, validated by ``openai.types.Batch``."""
        from openai.types import Batch

        errors = None
        if self.status == "failed":
            errors = {"object": "list", "data": [self.plan.error or {
                "code": "invalid_request", "message": "The batch input file is invalid.", "line": None}]}
        data = {
            "id": self.id, "object": "batch", "endpoint": self.request["endpoint"],
            "input_file_id": self.request["input_file_id"], "completion_window": self.request["completion_window"],
            "status": self.status, "created_at": self.created_at, "expires_at": self.created_at + 86_400,
            "output_file_id": self.output_file_id, "error_file_id": self.error_file_id, "errors": errors,
            "metadata": self.request.get("metadata"),
            "request_counts": {"total": self.n_lines, "completed": self.completed, "failed": self.failed},
            **{f"{status}_at": moment for status, moment in self.times.items() if status != "validating"},
        }
        return Batch.model_validate(data).model_dump(mode="json")


def parse_batch_input(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The request lines of a batch input file, or the ``errors.data`` entry that fails the batch
    (a line that is no JSON object, lacks ``custom_id``/``body``, repeats a ``custom_id`` or names
    another url), as OpenAI's validation does."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, text in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            return [], {"code": "invalid_json_line", "message": f"Line {number} is not valid JSON.", "line": number}
        if not isinstance(line, dict) or not line.get("custom_id") or not isinstance(line.get("body"), dict):
            return [], {"code": "invalid_request", "line": number,
                        "message": "Each line needs a 'custom_id' and a 'body' object."}
        if line["custom_id"] in seen:
            return [], {"code": "duplicate_custom_id", "line": number,
                        "message": f"The custom_id {line['custom_id']!r} is used more than once."}
        if line.get("method") != "POST" or line.get("url") != endpoint:
            return [], {"code": "mismatched_endpoint", "line": number,
                        "message": f"The url must be {endpoint} with method POST, as the batch's endpoint."}
        seen.add(line["custom_id"])
        lines.append(line)
    if not lines:
        return [], {"code": "empty_file", "message": "The batch input file holds no requests.", "line": None}
    return lines, None


class FakeBatches:
    """The batches of one :class:`FakeAPIState` (sharing its lock, ids, clock and files)."""

    def __init__(self, state: FakeAPIState) -> None:
        self.state = state
        self.batches: dict[str, FakeBatch] = {}
        self.inputs: dict[str, list[dict[str, Any]]] = {}
        self.next_plans: list[BatchPlan] = []
        self.lines_run = 0  # chat completions run inside batches

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a batch over an uploaded ``purpose="batch"`` file (400 on a bad request)."""
        from finetunekit.testing.fake_state import ApiError

        state = self.state
        with state.lock:
            for key in ("input_file_id", "endpoint", "completion_window"):
                if not body.get(key):
                    raise ApiError(400, f"Missing required parameter: '{key}'.", param=key)
            if body["endpoint"] not in SUPPORTED_ENDPOINTS:
                raise ApiError(400, f"The fake supports the endpoints {SUPPORTED_ENDPOINTS}.", param="endpoint")
            if body["completion_window"] != "24h":
                raise ApiError(400, "completion_window must be '24h'.", param="completion_window")
            meta = state.retrieve_file(body["input_file_id"])
            if meta["purpose"] != "batch":
                raise ApiError(400, f"File {meta['id']} has purpose {meta['purpose']!r}; a batch needs 'batch'.",
                               param="input_file_id")
            lines, problem = parse_batch_input(state.file_data[meta["id"]], body["endpoint"])
            plan = self.next_plans.pop(0) if self.next_plans else BatchPlan()
            if problem:
                plan = BatchPlan(outcome="failed", error=problem)
            batch = FakeBatch(id=state.new_id("batch"), request=dict(body), plan=plan,
                              created_at=state.tick(), n_lines=len(lines))
            batch.times["validating"] = batch.created_at
            self.batches[batch.id] = batch
            self.inputs[batch.id] = lines
            return batch.to_api()

    def get(self, batch_id: str) -> FakeBatch:
        """The batch ``batch_id`` (404 if unknown)."""
        from finetunekit.testing.fake_state import ApiError

        with self.state.lock:
            if batch_id not in self.batches:
                raise ApiError(404, f"No batch found with id '{batch_id}'.", code="not_found", param="batch_id")
            return self.batches[batch_id]

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """The batch, advanced one status first when the state advances on poll."""
        with self.state.lock:
            batch = self.get(batch_id)
            if self.state.advance_on_poll:
                self.step(batch)
            return batch.to_api()

    def list(self, after: str | None, limit: int) -> dict[str, Any]:
        """Batches, newest first."""
        from openai.types import Batch

        from finetunekit.testing.fake_state import cursor_page

        with self.state.lock:
            return cursor_page([b.to_api() for b in reversed(self.batches.values())], Batch, after, limit)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Cancel a batch that has not ended: ``cancelling`` now, ``cancelled`` at the next poll."""
        from finetunekit.testing.fake_state import ApiError

        with self.state.lock:
            batch = self.get(batch_id)
            if batch.terminal or batch.status == "cancelling":
                raise ApiError(400, f"Batch {batch_id} is {batch.status}; it cannot be cancelled.")
            batch.plan = BatchPlan(outcome="cancelled", answered=batch.plan.answered,
                                   failed_lines=batch.plan.failed_lines)
            statuses = batch.plan.statuses()
            batch.position = statuses.index("cancelling") - 1
            self.step(batch)
            return batch.to_api()

    def step(self, batch: FakeBatch) -> None:
        """Move ``batch`` one status along its plan (it stays ``in_progress`` while its plan says
        ``polls_in_progress=None``)."""
        statuses = batch.plan.statuses()
        if batch.terminal or batch.position >= len(statuses) - 1:
            return
        if statuses[batch.position + 1] != "in_progress" and batch.status == "in_progress" \
                and batch.plan.polls_in_progress is None:
            return
        batch.position += 1
        self.enter(batch, statuses[batch.position])

    def finish(self, batch_id: str, outcome: str = "completed") -> None:
        """End ``batch_id`` with ``outcome`` now (through ``finalizing``/``cancelling`` where the
        real API passes them)."""
        with self.state.lock:
            batch = self.get(batch_id)
            if batch.terminal:
                return
            batch.plan = BatchPlan(outcome=outcome, polls_in_progress=1, answered=batch.plan.answered,
                                   failed_lines=batch.plan.failed_lines, error=batch.plan.error)
            statuses = batch.plan.statuses()
            batch.position = len(statuses) - (3 if outcome in ("completed", "cancelled") else 2)
            while not batch.terminal:
                self.step(batch)

    def enter(self, batch: FakeBatch, status: str) -> None:
        """Enter ``status``; entering an end status runs the lines and writes the result files."""
        batch.status = status
        batch.times[status] = self.state.tick()
        if status in ("completed", "expired", "cancelled"):
            self._run_lines(batch)

    def _run_lines(self, batch: FakeBatch) -> None:
        from finetunekit.testing.fake_state import ApiError

        plan, outputs, errors = batch.plan, [], []
        for index, line in enumerate(self.inputs[batch.id]):
            failure = plan.failed_lines.get(index)
            if failure is None and batch.status != "completed" and index >= plan.answered:
                failure = LineFailure(None, *UNRUN_CODES[batch.status])
            if failure is not None:
                errors.append(self._line(line, failure.status_code, failure.code, failure.message))
                continue
            try:
                body = self.state.chat_completion(line["body"])
                self.lines_run += 1
                outputs.append(self._line(line, 200, body=body))
            except ApiError as exc:
                errors.append(self._line(line, exc.status, exc.code or exc.type, exc.message))
        random.Random(batch.id).shuffle(outputs)
        batch.completed, batch.failed = len(outputs), len(errors)
        if outputs:
            batch.output_file_id = self._store(batch, "output", outputs)
        if errors:
            batch.error_file_id = self._store(batch, "error", errors)

    def _line(self, line: dict[str, Any], status: int | None, code: str | None = None, message: str = "",
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        from finetunekit.testing.fake_state import ApiError

        response = None
        if status is not None:
            if body is None:
                body = ApiError(status, message, code=code, type=ERROR_TYPES.get(status, "server_error")).body()
            response = {"status_code": status, "request_id": self.state.new_id("req"), "body": body}
        error = {"code": code, "message": message} if status is None else None
        return {"id": self.state.new_id("batch_req"), "custom_id": line["custom_id"], "response": response,
                "error": error}

    def _store(self, batch: FakeBatch, kind: str, lines: list[dict[str, Any]]) -> str:
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return self.state.create_file(f"{batch.id}_{kind}.jsonl", "batch_output", data)["id"]
