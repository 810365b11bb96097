"""What a succeeded OpenAI job produced: metrics CSV, checkpoints, and the FineTunedModel."""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

from finetunekit.atomic import write_text
from finetunekit.backends.openai.client import DEFAULT_ENDPOINT
from finetunekit.training import FineTunedModel

METRICS_FILE = "metrics.csv"
#: OpenAI's own endpoint, as ``endpoint_of_options`` writes it (not recorded: it is the default)
OPENAI_ENDPOINT = DEFAULT_ENDPOINT + "/"


def decode_result_file(data: bytes) -> str:
    """The CSV text of a result file (OpenAI serves it base64-encoded; plain CSV is accepted too)."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.lstrip().startswith("step"):
        return text
    try:
        return base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text


def normalise_metrics(csv_text: str) -> Any:
    """A DataFrame with ``step`` and ``loss`` (and ``eval_loss``, ``accuracy``… where present).

    OpenAI's columns (``train_loss``, ``valid_loss``, ``train_accuracy``…) are kept as well.
    """
    import pandas as pd

    frame = pd.read_csv(io.StringIO(csv_text))
    frame.columns = [str(c).strip() for c in frame.columns]
    if "step" not in frame.columns or "train_loss" not in frame.columns and "loss" not in frame.columns:
        raise ValueError(f"result file has no step/train_loss columns (columns: {list(frame.columns)})")
    renames = {"train_loss": "loss", "valid_loss": "eval_loss", "train_accuracy": "accuracy",
               "valid_mean_token_accuracy": "eval_accuracy"}
    for source, target in renames.items():
        if source in frame.columns and target not in frame.columns:
            frame[target] = pd.to_numeric(frame[source], errors="coerce")
    frame = frame.dropna(axis="columns", how="all")
    leading = [c for c in ("step", "loss", "eval_loss") if c in frame.columns]
    return frame[leading + [c for c in frame.columns if c not in leading]]


def save_metrics(client: Any, job: Any, run_dir: Path, say: Any) -> str | None:
    """Download the job's result file, normalise it, save ``metrics.csv``; its path or ``None``."""
    if not job.result_files:
        say(f"[openai] job {job.id} has no result file; no training metrics saved")
        return None
    data = client.files.content(job.result_files[0]).read()
    try:
        frame = normalise_metrics(decode_result_file(data))
    except ValueError as exc:
        say(f"[openai] could not read the result file {job.result_files[0]}: {exc}")
        return None
    path = run_dir / METRICS_FILE
    write_text(path, frame.to_csv(index=False))
    return str(path)


def list_checkpoints(client: Any, job_id: str) -> list[dict[str, Any]]:
    """The job's checkpoints (oldest first) as plain dicts."""
    checkpoints = [c.model_dump(mode="json") for c in client.fine_tuning.jobs.checkpoints.list(job_id)]
    return sorted(checkpoints, key=lambda c: c.get("step_number") or 0)


def fine_tuned_model(job: Any, metrics_path: str | None, checkpoints: list[dict[str, Any]],
                     endpoint: str, api_key_env: str) -> FineTunedModel:
    """The :class:`FineTunedModel` of a succeeded job.

    ``chat_options`` name the model, the endpoint it was trained on (unless OpenAI's own) and
    the environment variable of that endpoint's key, so ``chat_model()`` asks the same
    endpoint with the same key and never sends another key there.
    """
    hyperparameters = job.hyperparameters.model_dump(mode="json") if job.hyperparameters else {}
    chat_options: dict[str, Any] = {"model": job.fine_tuned_model, "api_key_env": api_key_env}
    if endpoint != OPENAI_ENDPOINT:
        chat_options["base_url"] = endpoint
    return FineTunedModel(
        backend="openai",
        base_model=job.model,
        model=job.fine_tuned_model,
        metrics_path=metrics_path,
        chat_options=chat_options,
        details={
            "job_id": job.id,
            "trained_tokens": job.trained_tokens,
            "hyperparameters": hyperparameters,
            "checkpoints": checkpoints,
            "training_file": job.training_file,
            "validation_file": job.validation_file,
            "result_files": list(job.result_files or []),
            "seed": job.seed,
        },
    )
