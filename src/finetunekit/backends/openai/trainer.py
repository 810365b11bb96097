"""Trainer "openai": supervised fine-tuning through the OpenAI API (or Azure / compatible).

Validate → write JSONL → upload → create the job → record ids in ``openai_job.json`` →
poll (status changes and events shown) → metrics, checkpoints and a ``FineTunedModel``.
Rerunning with the same ``run_dir`` reattaches to the recorded job; nothing is paid twice:
``run_dir`` is locked while a run works in it, an upload whose id a killed run could not
record is found again (the file name carries the content's hash), and so is a job.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Callable, Literal, Union

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from finetunekit.atomic import write_bytes, write_json
from finetunekit.component import option
from finetunekit.hookspecs import hookimpl
from finetunekit.backends.openai.client import (
    OpenAIConnectionOptions,
    api_errors,
    build_client,
    endpoint_of_options,
)
from finetunekit.errors import ConfigError
from finetunekit.run_lock import hold_run_dir
from finetunekit.training import FineTunedModel, Trainer
from finetunekit.backends.openai.cost import DryRunReport, dry_run_report
from finetunekit.backends.openai.job import (
    STATE_FILE,
    InvalidExamplesError,
    JobState,
    OpenAIJobCancelledError,
    OpenAIJobFailedError,
    examples_bytes,
    sha256,
    validate,
    validation_errors,
)
from finetunekit.backends.openai.poll import TERMINAL_STATUSES, JobPoller, say_to_stderr
from finetunekit.backends.openai.results import fine_tuned_model, list_checkpoints, save_metrics

RUN_TOKEN_KEY = "finetunekit_run"
#: How many of the newest uploaded files are searched for an identical earlier upload.
UPLOAD_SEARCH_LIMIT = 1000
Auto = Literal["auto"]


class OpenAITrainer(Trainer):
    """Fine-tunes a hosted model with the OpenAI fine-tuning API (``method="supervised"``)."""

    name = "openai"

    class Options(OpenAIConnectionOptions):
        """Model, hyperparameters (each ``"auto"`` or a value), job settings and connection."""

        model: str = Field(default="gpt-4o-mini-2024-07-18", description="Base model to fine-tune.")
        n_epochs: Union[Auto, PositiveInt] = Field(default="auto", description="Epochs, or \"auto\" (the API chooses).")
        batch_size: Union[Auto, PositiveInt] = Field(default="auto", description="Batch size, or \"auto\".")
        learning_rate_multiplier: Union[Auto, PositiveFloat] = Field(default="auto", description="Learning-rate multiplier, or \"auto\".")
        suffix: str | None = Field(default=None, max_length=64, description="Added to the model name.")
        seed: int | None = option(pipeline="seed", default=None, description="Seed of the job (reproducible runs).")
        metadata: dict[str, str] | None = Field(default=None, description="Up to 15 key/values on the job.")
        poll_interval_min: float = option(affects_result=False, default=2.0, gt=0, description="Seconds between polls after a change.")
        poll_interval_max: float = option(affects_result=False, default=60.0, gt=0, description="Longest wait between polls.")

        @model_validator(mode="after")
        def _check(self) -> OpenAITrainer.Options:
            if self.poll_interval_max < self.poll_interval_min:
                raise ValueError("poll_interval_max must be >= poll_interval_min")
            if self.metadata and (len(self.metadata) > 15 or RUN_TOKEN_KEY in self.metadata):
                raise ValueError(f"metadata takes at most 15 keys, and not {RUN_TOKEN_KEY!r} (used by finetunekit)")
            return self

    #: where progress lines go, and how to wait between polls (tests may replace them)
    say: Callable[[str], None] = staticmethod(say_to_stderr)
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def train(self, examples: Any, validation: Any = None, *, run_dir: str | Path) -> FineTunedModel:
        """Fine-tune on ``examples`` (and ``validation``), reattaching to a job ``run_dir`` records.

        ``run_dir`` is locked for the call: a second process training into it fails at once
        (:class:`~finetunekit.run_lock.RunDirBusyError`) instead of starting a second job."""
        with hold_run_dir(run_dir):
            return self._train(examples, validation, Path(run_dir))

    def _train(self, examples: Any, validation: Any, run_dir: Path) -> FineTunedModel:
        options = self.options
        train_bytes = examples_bytes(examples)
        valid_bytes = examples_bytes(validation) if validation is not None else None
        settings = self._job_settings()
        state = JobState.load(run_dir)
        if state is not None:  # checked before anything is written: the record of what was uploaded stays
            state.check_same_data(sha256(train_bytes), sha256(valid_bytes), run_dir)
            state.check_same_settings(settings, run_dir)
        write_bytes(run_dir / "train.jsonl", train_bytes)
        if valid_bytes is not None:
            write_bytes(run_dir / "validation.jsonl", valid_bytes)
        if state is None:
            self._refuse_invalid(examples, run_dir / "train.jsonl", "training")
            if validation is not None:
                self._refuse_invalid(validation, run_dir / "validation.jsonl", "validation")
        client = build_client(options)
        with api_errors(client):
            if state is None:
                state = JobState(base_model=options.model, endpoint=settings["endpoint"], settings=settings,
                                 training_sha256=sha256(train_bytes), validation_sha256=sha256(valid_bytes))
                state.save(run_dir)
            if state.job_id is None:
                self._start_job(client, state, run_dir, train_bytes, valid_bytes)
            else:
                self.say(f"[openai] reattaching to job {state.job_id} recorded in {run_dir / STATE_FILE}")
            job = self._poll(client, state, run_dir)
            return self._finish(client, job, run_dir)

    def check(self, examples: Any) -> Any:
        """OpenAI's data checks: structure, tokens for the model, at least 10 examples."""
        return validate(examples, self.options.model)

    def dry_run(self, examples: Any, validation: Any = None, *, run_dir: str | Path,
                price_per_million_tokens: float | None = None) -> DryRunReport:
        """Validate, count tokens and estimate the cost without sending anything.

        Writes the JSONL files into ``run_dir`` (what would be uploaded) and ``dry_run.json``.
        """
        run_dir = Path(run_dir)
        write_bytes(run_dir / "train.jsonl", examples_bytes(examples))
        report = validate(examples, self.options.model)
        errors = [str(e) for e in report.errors]
        if validation is not None:
            write_bytes(run_dir / "validation.jsonl", examples_bytes(validation))
            errors += [f"validation: {e}" for e in validation_errors(validation, self.options.model)]
        result = dry_run_report(report, errors, n_epochs=self.options.n_epochs,
                                price_per_million=price_per_million_tokens)
        write_json(run_dir / "dry_run.json", result.model_dump(mode="json"))
        return result

    def cancel(self, run_dir: str | Path) -> str:
        """Cancel the job recorded in ``run_dir``; return its status afterwards."""
        run_dir = Path(run_dir)
        state = JobState.load(run_dir)
        if state is None or state.job_id is None:
            raise FileNotFoundError(f"{run_dir / STATE_FILE} records no OpenAI job to cancel")
        client = build_client(self.options)
        with api_errors(client):
            job = client.fine_tuning.jobs.cancel(state.job_id)
        state.status = str(job.status)
        state.save(run_dir)
        self.say(f"[openai] job {state.job_id}: cancel requested, status {job.status}")
        return state.status

    def stop_unfinished(self, run_dir: str | Path) -> str | None:
        """Make sure no job recorded in ``run_dir`` still runs: cancel a job that is not terminal
        (also one a killed run created but could not record). Returns what was done, or ``None``.
        Raises a :class:`ConfigError` when a job could not be brought to an end."""
        run_dir = Path(run_dir)
        state = JobState.load(run_dir)
        if state is None or (state.job_id is None and state.training_file_id is None):
            return None
        if state.status in TERMINAL_STATUSES:
            return None
        client = build_client(self.options)
        with api_errors(client):
            job = (client.fine_tuning.jobs.retrieve(state.job_id) if state.job_id is not None
                   else self._job_created_before(client, state))
            if job is None or str(job.status) in TERMINAL_STATUSES:
                return None
            job = client.fine_tuning.jobs.cancel(job.id)
        state.job_id, state.status = job.id, str(job.status)
        state.save(run_dir)
        if state.status not in TERMINAL_STATUSES:
            raise ConfigError(f"OpenAI job {job.id} recorded in {run_dir / STATE_FILE} is still {state.status} "
                              "after a cancel request; rerun once it shows cancelled")
        self.say(f"[openai] cancelled job {job.id} of the earlier run in {run_dir}")
        return f"cancelled job {job.id}"

    # ------------------------------------------------------------------ steps
    def _refuse_invalid(self, examples: Any, path: Path, what: str) -> None:
        errors = validation_errors(examples, self.options.model)
        if errors:
            raise InvalidExamplesError(what, errors, path)

    def _start_job(self, client: Any, state: JobState, run_dir: Path, train: bytes, valid: bytes | None) -> None:
        """Upload what is not uploaded yet and create the job (or find the one a crash left)."""
        if state.training_file_id is None:
            state.training_file_id = self._upload(client, "train.jsonl", train)
            state.save(run_dir)
        if valid is not None and state.validation_file_id is None:
            state.validation_file_id = self._upload(client, "validation.jsonl", valid)
            state.save(run_dir)
        job = self._job_created_before(client, state)
        if job is None:
            request = self._job_request(state)
            job = self._create_once(lambda: client.with_options(max_retries=0).fine_tuning.jobs.create(**request),
                                    lambda: self._job_created_before(client, state), "creating the job")
            self.say(f"[openai] created job {job.id} ({state.base_model})")
        else:
            self.say(f"[openai] found job {job.id} created by an interrupted run; reattaching")
        state.job_id, state.status = job.id, str(job.status)
        state.save(run_dir)

    def _upload(self, client: Any, filename: str, data: bytes) -> str:
        """Upload ``data`` as ``NAME-<sha256 prefix>.jsonl``, or reuse an identical earlier upload
        (same name, so same content hash, and same size): a run killed after the upload but
        before recording the file id uploads nothing twice."""
        stem, _, suffix = filename.rpartition(".")
        name = f"{stem}-{sha256(data)[:16]}.{suffix}"

        def earlier_upload() -> Any:
            for earlier in itertools.islice(client.files.list(purpose="fine-tune", limit=100), UPLOAD_SEARCH_LIMIT):
                if earlier.filename == name and earlier.bytes == len(data) and earlier.status not in ("error", "deleted"):
                    return earlier
            return None

        earlier = earlier_upload()
        if earlier is not None:
            self.say(f"[openai] reusing {earlier.id}: an identical {filename} uploaded earlier")
            return earlier.id
        uploaded = self._create_once(
            lambda: client.with_options(max_retries=0).files.create(file=(name, data), purpose="fine-tune"),
            earlier_upload, f"uploading {filename}")
        self.say(f"[openai] uploaded {filename} ({len(data):,} bytes) as {uploaded.id}")
        return uploaded.id

    def _create_once(self, create: Callable[[], Any], made_before: Callable[[], Any], what: str) -> Any:
        """``create()`` without the SDK's own retries — a retried upload or job creation whose
        first answer was lost would make a second file or job — retrying connection errors,
        429 and 5xx ourselves (``max_retries`` times), each time after looking for what the
        failed attempt may have made (``made_before()``)."""
        import openai

        retried = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        for attempt in range(self.options.max_retries + 1):
            if attempt:
                found = made_before()
                if found is not None:
                    return found
            try:
                return create()
            except retried as exc:
                if attempt == self.options.max_retries:
                    raise
                self.say(f"[openai] {what}: {type(exc).__name__}; retrying")
                self.sleep(min(0.5 * 2 ** attempt, 30.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _job_created_before(self, client: Any, state: JobState) -> Any:
        """A job carrying this run's token: created by a run killed before it could record it."""
        for job in client.fine_tuning.jobs.list(limit=100, metadata={RUN_TOKEN_KEY: state.run_token}):
            if (job.metadata or {}).get(RUN_TOKEN_KEY) == state.run_token:
                return job
        return None

    def _job_settings(self) -> dict[str, Any]:
        """What the job is created with, as recorded in the state (no key, no client)."""
        o = self.options
        return {"model": o.model, "n_epochs": o.n_epochs, "batch_size": o.batch_size,
                "learning_rate_multiplier": o.learning_rate_multiplier, "suffix": o.suffix, "seed": o.seed,
                "metadata": o.metadata, "endpoint": endpoint_of_options(o)}

    def _job_request(self, state: JobState) -> dict[str, Any]:
        options = self.options
        hyperparameters = {"n_epochs": options.n_epochs, "batch_size": options.batch_size,
                           "learning_rate_multiplier": options.learning_rate_multiplier}
        request: dict[str, Any] = {
            "model": state.base_model,
            "training_file": state.training_file_id,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
            "metadata": {**(options.metadata or {}), RUN_TOKEN_KEY: state.run_token},
        }
        for key in ("suffix", "seed"):
            if getattr(options, key) is not None:
                request[key] = getattr(options, key)
        if state.validation_file_id:
            request["validation_file"] = state.validation_file_id
        return request

    def _poll(self, client: Any, state: JobState, run_dir: Path) -> Any:
        def record(job: Any) -> None:
            state.status, state.fine_tuned_model = str(job.status), job.fine_tuned_model
            state.save(run_dir)

        poller = JobPoller(client, state.job_id, min_interval=self.options.poll_interval_min,
                           max_interval=self.options.poll_interval_max, on_status=record,
                           say=self.say, sleep=self.sleep)
        try:
            return poller.poll()
        except KeyboardInterrupt:
            self.say(f"[openai] interrupted: job {state.job_id} keeps running on the server. Reattach with "
                     f"trainer.train(examples, run_dir={str(run_dir)!r}) (same examples), or cancel it with "
                     f"trainer.cancel({str(run_dir)!r}).")
            raise

    def _finish(self, client: Any, job: Any, run_dir: Path) -> FineTunedModel:
        if job.status == "failed":
            error = job.error
            raise OpenAIJobFailedError(job.id, "failed", getattr(error, "code", None),
                                       getattr(error, "message", None) or "no error message given", run_dir)
        if job.status == "cancelled":
            raise OpenAIJobCancelledError(job.id, "cancelled", None, "the job was cancelled", run_dir)
        metrics_path = save_metrics(client, job, run_dir, self.say)
        result = fine_tuned_model(job, metrics_path, list_checkpoints(client, job.id),
                                  endpoint_of_options(self.options), self.options.api_key_env)
        write_json(run_dir / "fine_tuned_model.json", result.model_dump(mode="json"))
        self.say(f"[openai] fine-tuned model {result.model} ({job.trained_tokens} trained tokens)")
        return result


@hookimpl
def register_trainers(register: Callable[[Any], None]) -> None:
    """Register the "openai" trainer."""
    register(OpenAITrainer)
