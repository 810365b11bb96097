"""Where the local trainer reports its metrics besides ``metrics.csv``, and early stopping.

``report_to`` names ``transformers``' own reporting integrations (TensorBoard, MLflow, Weights &
Biases, Trackio); they are passed through to ``TrainingArguments(report_to=...)`` unchanged. A
named integration that is not installed is a configuration error up front, not a crash after
the model has loaded.
"""

from __future__ import annotations

import importlib.util
from typing import Any

#: Integration name -> (modules of which one must be importable, what to install).
REPORTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install tensorboard"),
    "mlflow": (("mlflow",), "pip install mlflow"),
    "wandb": (("wandb",), "pip install wandb"),
    "trackio": (("trackio",), "pip install trackio"),
}
NONE, ALL = "none", "all"


def installed_reporters() -> list[str]:
    """The integrations of :data:`REPORTERS` whose package is importable here."""
    return [name for name, (modules, _) in REPORTERS.items() if any(_importable(m) for m in modules)]


def check_report_to(value: str | list[str]) -> str | list[str]:
    """``value`` if every integration it names is known and installed; else ``ValueError``
    saying which one and how to install it. ``"none"`` and ``"all"`` (every installed one)
    stand alone."""
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ValueError('give "none", "all" or at least one integration')
    if (NONE in names or ALL in names) and len(names) > 1:
        raise ValueError(f'"none" and "all" stand alone, got {names}')
    for name in names:
        if name in (NONE, ALL):
            continue
        if name not in REPORTERS:
            raise ValueError(f"unknown integration {name!r}; expected none, all or one of {sorted(REPORTERS)}")
        modules, install = REPORTERS[name]
        if not any(_importable(module) for module in modules):
            raise ValueError(f"report_to names {name!r}, which is not installed ({install})")
    return value


def report_to_argument(value: str | list[str]) -> str | list[str]:
    """What ``TrainingArguments(report_to=...)`` gets: ``"all"`` becomes the installed
    integrations of :data:`REPORTERS` (never another tool transformers happens to find)."""
    if value == ALL or value == [ALL]:
        return installed_reporters() or NONE
    return value


def early_stopping_arguments(patience: int | None, *, has_eval: bool, save_steps: int | None) -> dict[str, Any]:
    """The ``TrainingArguments`` early stopping needs: the eval loss decides, the best epoch's
    weights are loaded at the end (so what is saved is the best model, not the last)."""
    from finetunekit.errors import ConfigError

    if patience is None:
        return {}
    if not has_eval:
        raise ConfigError(
            "early_stopping_patience needs validation examples: pass validation= to train(), or set "
            "dataset.validation_size in the pipeline config"
        )
    if save_steps is not None:
        raise ConfigError(
            "early_stopping_patience evaluates and checkpoints once per epoch; leave save_steps unset"
        )
    return {"load_best_model_at_end": True, "metric_for_best_model": "eval_loss", "greater_is_better": False}


def early_stopping_callbacks(patience: int | None) -> list[Any]:
    """``[EarlyStoppingCallback(patience)]``, or nothing without a patience."""
    if patience is None:
        return []
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=patience)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
