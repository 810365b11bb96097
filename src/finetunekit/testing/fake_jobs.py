"""Simulated fine-tuning jobs for the fake OpenAI server.

A job walks through a :class:`JobPlan` (a list of statuses) one step per tick, emitting
events as OpenAI does, and on success produces a fine-tuned model id, checkpoints and a
result-metrics CSV. Every object it hands out is validated by the ``openai`` SDK's own types.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

KNOWN_STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
RESULT_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")


@dataclass
class JobPlan:
    """The statuses a job goes through, one per tick; it stays on the last one.

    ``error`` (``{"code", "message", "param"}``) is reported when the plan ends in ``failed``.
    """

    statuses: list[str] = field(
        default_factory=lambda: ["validating_files", "queued", "running", "succeeded"]
    )
    error: dict[str, Any] | None = None

    @classmethod
    def succeed(cls) -> JobPlan:
        """validating_files → queued → running → succeeded."""
        return cls()

    @classmethod
    def fail(cls, code: str = "invalid_training_file", message: str = "The job failed.",
             param: str | None = "training_file") -> JobPlan:
        """… → running → failed, with an error object."""
        return cls(["validating_files", "queued", "running", "failed"],
                   {"code": code, "message": message, "param": param})

    @classmethod
    def cancelled(cls) -> JobPlan:
        """… → running → cancelled (cancelled on the provider's side)."""
        return cls(["validating_files", "queued", "running", "cancelled"])

    @classmethod
    def stay_running(cls) -> JobPlan:
        """… → running, forever (until cancelled or finished by ``FakeOpenAI.finish_job``)."""
        return cls(["validating_files", "queued", "running"])

    @classmethod
    def with_unknown_status(cls, status: str = "paused_for_review") -> JobPlan:
        """A plan that passes through a status the SDK does not know, then succeeds."""
        return cls(["validating_files", "queued", status, "running", "succeeded"])


def resolve_hyperparameters(requested: dict[str, Any], n_examples: int) -> dict[str, Any]:
    """Replace ``"auto"``/missing values the way OpenAI documents its defaults."""
    from finetunekit.examples.validation import default_epochs

    n_epochs = requested.get("n_epochs", "auto")
    if n_epochs in (None, "auto"):
        n_epochs = default_epochs(n_examples)
    batch_size = requested.get("batch_size", "auto")
    if batch_size in (None, "auto"):
        batch_size = max(1, min(256, round(0.002 * n_examples)))
    lr = requested.get("learning_rate_multiplier", "auto")
    if lr in (None, "auto"):
        lr = 1.8
    return {"n_epochs": int(n_epochs), "batch_size": int(batch_size), "learning_rate_multiplier": float(lr)}


@dataclass
class FakeJob:
    """One simulated job: its request, its plan, where it is in the plan, and its events."""

    id: str
    request: dict[str, Any]
    plan: JobPlan
    created_at: int
    n_examples: int
    n_tokens: int
    position: int = -1
    status: str = "validating_files"
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    fine_tuned_model: str | None = None
    result_file: str | None = None
    finished_at: int | None = None
    error: dict[str, Any] | None = None
    examples: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters actually used (``auto`` resolved)."""
        method = self.request.get("method") or {}
        requested = (method.get("supervised") or {}).get("hyperparameters") or self.request.get(
            "hyperparameters") or {}
        return resolve_hyperparameters(requested, self.n_examples)

    @property
    def total_steps(self) -> int:
        """Training steps over all epochs."""
        hp = self.hyperparameters
        return math.ceil(self.n_examples / hp["batch_size"]) * hp["n_epochs"]

    @property
    def terminal(self) -> bool:
        """Whether the job has finished (succeeded, failed or cancelled)."""
        return self.status in TERMINAL_STATUSES

    def loss_at(self, step: int) -> float:
        """A deterministic, decreasing training loss curve."""
        return round(0.15 + 1.85 * math.exp(-3.0 * step / max(self.total_steps, 1)), 4)

    def to_api(self) -> dict[str, Any]:
        """The job as the API returns it, validated by ``openai.types.fine_tuning.FineTuningJob``."""
        from openai.types.fine_tuning import FineTuningJob

        hp = self.hyperparameters
        data = {
            "id": self.id,
            "object": "fine_tuning.job",
            "created_at": self.created_at,
            "model": self.request["model"],
            "organization_id": "org-fake",
            "training_file": self.request["training_file"],
            "validation_file": self.request.get("validation_file"),
            "result_files": [self.result_file] if self.result_file else [],
            "seed": self.request.get("seed") if self.request.get("seed") is not None else 42,
            "status": self.status if self.status in KNOWN_STATUSES else "running",
            "hyperparameters": hp,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
            "fine_tuned_model": self.fine_tuned_model,
            "finished_at": self.finished_at,
            "trained_tokens": self.n_tokens * hp["n_epochs"] if self.status == "succeeded" else None,
            "error": self.error,
            "metadata": self.request.get("metadata"),
            "estimated_finish": None,
            "integrations": [],
        }
        body = FineTuningJob.model_validate(data).model_dump(mode="json")
        body["status"] = self.status  # an unknown status string goes out as it is
        return body

    def enter(self, status: str, now: int, new_id: Callable[[str], str],
              store_result: Callable[[str], str]) -> None:
        """Move to ``status``, emitting the events OpenAI would."""
        self.status = status
        say = lambda message, **kw: self._event(new_id, now, message, **kw)  # noqa: E731
        if status == "validating_files":
            say(f"Validating training file: {self.request['training_file']}")
        elif status == "queued":
            say("Files validated, moving job to queued state")
        elif status == "running":
            say("Fine-tuning job started")
            self._step_events(new_id, now, range(1, max(2, self.total_steps // 2)))
        elif status == "succeeded":
            self._step_events(new_id, now, range(max(2, self.total_steps // 2), self.total_steps + 1))
            self.fine_tuned_model = self._model_id()
            self._make_checkpoints(new_id, now)
            self.result_file = store_result(self.result_csv())
            self.finished_at = now
            say(f"New fine-tuned model created: {self.fine_tuned_model}")
            say("The job has successfully completed")
        elif status == "failed":
            self.error = self.plan.error or {"code": "server_error", "message": "The job failed.",
                                             "param": None}
            self.finished_at = now
            say(self.error["message"], level="error")
        elif status == "cancelled":
            self.finished_at = now
            say("Fine-tuning job cancelled")
        else:
            say(f"Job entered status {status}")

    def _event(self, new_id: Callable[[str], str], now: int, message: str, *, level: str = "info",
               type: str = "message", data: dict[str, Any] | None = None) -> None:
        from openai.types.fine_tuning import FineTuningJobEvent

        event = {"id": new_id("ftevent"), "object": "fine_tuning.job.event", "created_at": now,
                 "level": level, "message": message, "type": type, "data": data or {}}
        self.events.append(FineTuningJobEvent.model_validate(event).model_dump(mode="json"))

    def _step_events(self, new_id: Callable[[str], str], now: int, steps: range) -> None:
        for step in steps:
            loss = self.loss_at(step)
            self._event(new_id, now, f"Step {step}/{self.total_steps}: training loss={loss:.2f}",
                        type="metrics", data={"step": step, "train_loss": loss,
                                              "total_steps": self.total_steps})

    def _model_id(self) -> str:
        suffix = self.request.get("suffix") or ""
        return f"ft:{self.request['model']}:fake-org:{suffix}:{self.id.rsplit('-', 1)[-1]}"

    def _make_checkpoints(self, new_id: Callable[[str], str], now: int) -> None:
        from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

        hp = self.hyperparameters
        per_epoch = self.total_steps // hp["n_epochs"]
        for epoch in range(max(1, hp["n_epochs"] - 2), hp["n_epochs"] + 1):
            step = per_epoch * epoch
            model = self.fine_tuned_model if epoch == hp["n_epochs"] else f"{self.fine_tuned_model}:ckpt-step-{step}"
            checkpoint = {
                "id": new_id("ftckpt"), "object": "fine_tuning.job.checkpoint", "created_at": now,
                "fine_tuned_model_checkpoint": model, "fine_tuning_job_id": self.id,
                "step_number": step,
                "metrics": {"step": float(step), "train_loss": self.loss_at(step),
                            "train_mean_token_accuracy": round(1 - self.loss_at(step) / 2.5, 4)},
            }
            self.checkpoints.append(FineTuningJobCheckpoint.model_validate(checkpoint).model_dump(mode="json"))

    def result_csv(self) -> str:
        """The result-metrics CSV (OpenAI's columns; validation columns empty without a file)."""
        out = io.StringIO()
        out.write(",".join(RESULT_COLUMNS) + "\n")
        has_validation = bool(self.request.get("validation_file"))
        for step in range(1, self.total_steps + 1):
            loss = self.loss_at(step)
            valid = f"{loss * 1.1:.4f},{1 - loss * 1.1 / 2.5:.4f}" if has_validation else ","
            out.write(f"{step},{loss:.4f},{1 - loss / 2.5:.4f},{valid}\n")
        return out.getvalue()


def encode_result_file(csv_text: str, as_base64: bool) -> bytes:
    """The bytes ``files.content`` serves for a result file (OpenAI serves them base64-encoded)."""
    raw = csv_text.encode()
    return base64.b64encode(raw) if as_base64 else raw


def parse_training_file(data: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """The examples of an uploaded JSONL file, or an error message like OpenAI's validation."""
    examples = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as exc:
            return [], f"Invalid file format. Line {number}: not valid JSON ({exc.msg})."
        if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
            return [], f"Invalid file format. Line {number}: expected an object with 'messages'."
        examples.append(example)
    if not examples:
        return [], "Invalid file format. The file holds no examples."
    return examples, None


def count_tokens(examples: list[dict[str, Any]]) -> int:
    """A rough, deterministic token count (words + 4 per message)."""
    return sum(len(str(m.get("content", "")).split()) + 4
               for example in examples for m in example["messages"])
