"""State and errors of an OpenAI fine-tuning run, and preparing its examples for upload.

``openai_job.json`` in the run directory records the uploaded file ids and the job id
*before* any polling, so a rerun (also after a crash) reattaches instead of paying twice.
It never holds the API key.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from finetunekit.atomic import write_json
from finetunekit.backends.openai.client import OpenAIRequestError
from finetunekit.errors import ConfigError, DataError, TrainingError

__all__ = ["InvalidExamplesError", "JobState", "OpenAIJobCancelledError", "OpenAIJobError", "OpenAIJobFailedError",
           "OpenAIRequestError", "STATE_FILE", "examples_bytes", "sha256", "validate", "validation_errors"]

STATE_FILE = "openai_job.json"
MAX_LISTED_ERRORS = 5


class InvalidExamplesError(DataError):
    """The examples failed validation; nothing was uploaded. ``errors`` holds every problem."""

    def __init__(self, what: str, errors: list[Any], path: Path | None = None) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:MAX_LISTED_ERRORS])
        more = f" (and {len(errors) - MAX_LISTED_ERRORS} more)" if len(errors) > MAX_LISTED_ERRORS else ""
        super().__init__(f"{what} examples have {len(errors)} error(s), nothing was uploaded: {shown}{more}",
                         path=path)


class OpenAIJobError(TrainingError):
    """A fine-tuning job ended without a model; carries the job id, status, code and message."""

    def __init__(self, job_id: str, status: str, code: str | None, message: str, run_dir: Path | None = None) -> None:
        self.job_id, self.status, self.code, self.api_message = job_id, status, code, message
        where = f" (run directory {run_dir})" if run_dir else ""
        super().__init__(f"OpenAI fine-tuning job {job_id} {status}{where}: "
                         f"{code + ': ' if code else ''}{message}")


class OpenAIJobFailedError(OpenAIJobError):
    """The job's status is ``failed``; ``code``/``api_message`` come from its error object."""


class OpenAIJobCancelledError(OpenAIJobError):
    """The job's status is ``cancelled``."""


class JobState(BaseModel):
    """What ``openai_job.json`` holds: enough to reattach to the job, and no secret."""

    model_config = ConfigDict(extra="ignore")

    run_token: str = Field(default_factory=lambda: uuid.uuid4().hex)
    base_model: str
    endpoint: str = ""
    training_sha256: str
    validation_sha256: str | None = None
    training_file_id: str | None = None
    validation_file_id: str | None = None
    job_id: str | None = None
    status: str | None = None
    fine_tuned_model: str | None = None
    #: what the job was (or will be) created with: model, hyperparameters, suffix, seed,
    #: metadata and endpoint (never a key or a client); ``None`` in records of older versions
    settings: dict[str, Any] | None = None
    updated_at: float = Field(default_factory=time.time)

    @classmethod
    def load(cls, run_dir: Path) -> JobState | None:
        """The recorded state, or ``None`` when the run directory has none."""
        path = run_dir / STATE_FILE
        if not path.exists():
            return None
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{path} is not a valid OpenAI job record ({exc}); "
                              "delete it to start a new job") from exc

    def save(self, run_dir: Path) -> None:
        """Write the state atomically."""
        self.updated_at = time.time()
        write_json(run_dir / STATE_FILE, self.model_dump(mode="json"))

    def check_same_data(self, training_sha256: str, validation_sha256: str | None, run_dir: Path) -> None:
        """Refuse to reattach a run directory to examples other than those it trained on."""
        if (training_sha256, validation_sha256) != (self.training_sha256, self.validation_sha256):
            raise ConfigError(
                f"{run_dir / STATE_FILE} records job {self.job_id or '(not created yet)'} for other "
                "examples than these; use a new run_dir, or delete that file to start a new job")

    def check_same_settings(self, settings: dict[str, Any], run_dir: Path) -> None:
        """Refuse to reattach a run directory to a job created with other options.

        ``settings`` is what this run would create its job with; records of older versions
        (without ``settings``) are checked on the base model and endpoint only.
        """
        recorded = self.settings
        if recorded is None:
            recorded = {"model": self.base_model, **({"endpoint": self.endpoint} if self.endpoint else {})}
        current = json.loads(json.dumps(settings))
        differing = [f"{key} (recorded {recorded[key]!r}, now {current.get(key)!r})"
                     for key in recorded if recorded[key] != current.get(key)]
        differing += [f"{key} (not recorded, now {current[key]!r})" for key in current
                      if key not in recorded and self.settings is not None]
        if differing:
            raise ConfigError(
                f"{run_dir / STATE_FILE} records job {self.job_id or '(not created yet)'} created with other "
                f"options: {'; '.join(differing)}. To start a new job with these options use another "
                "run_dir (or delete that file); to reattach, rerun with the recorded options")


def sha256(data: bytes | None) -> str | None:
    """Hex SHA-256 of ``data`` (``None`` for ``None``)."""
    return hashlib.sha256(data).hexdigest() if data is not None else None


def examples_bytes(examples: Any) -> bytes:
    """The bytes of the JSONL training file of ``examples`` (an ExampleSet or ``{"messages"}``
    dicts), exactly as ``ExampleSet.to_jsonl`` writes them; nothing is written to the run."""
    import tempfile

    from finetunekit.examples.example_set import as_example_set

    with tempfile.TemporaryDirectory(prefix="finetunekit-") as tmp:
        return as_example_set(examples).to_jsonl(Path(tmp) / "examples.jsonl").read_bytes()


def validation_errors(examples: Any, model: str) -> list[Any]:
    """The errors :func:`validate` finds (warnings are not errors)."""
    return list(validate(examples, model).errors)


def validate(examples: Any, model: str) -> Any:
    """``examples`` (a plain sequence is wrapped) checked with OpenAI's rules: the structural
    checks, tokens counted for ``model``, and OpenAI's minimum of 10 examples (50 suggested)."""
    from finetunekit.examples.example_set import as_example_set
    from finetunekit.examples.validation import MIN_EXAMPLES, SUGGESTED_MIN_EXAMPLES

    return as_example_set(examples).validate(
        model=model, min_examples=MIN_EXAMPLES, suggested_min_examples=SUGGESTED_MIN_EXAMPLES
    )
