"""Training-loop callbacks of the local trainer: the loss history CSV, kept current while training,
and freed memory handed back to the operating system after every step."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Mapping

#: Columns always present first in the metrics CSV; any other logged number follows.
LEADING_COLUMNS = ("step", "loss", "epoch", "learning_rate", "grad_norm", "eval_loss")

#: Keys of the end-of-training summary entry, which is not a point on the loss curve.
SUMMARY_KEYS = ("train_runtime", "train_loss", "train_samples_per_second", "total_flos")


def history_rows(log_history: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per logged step, merging training and evaluation entries of the same step."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if any(key in entry for key in SUMMARY_KEYS) or "step" not in entry:
            continue
        row = rows.setdefault(int(entry["step"]), {"step": int(entry["step"])})
        row.update({k: v for k, v in entry.items() if k != "step" and isinstance(v, (int, float))})
    return [rows[step] for step in sorted(rows)]


def history_csv(log_history: Iterable[Mapping[str, Any]]) -> str:
    """The loss history as CSV text (columns ``step``, ``loss``, ``epoch``, ``learning_rate``, …)."""
    rows = history_rows(log_history)
    extra = sorted({key for row in rows for key in row} - set(LEADING_COLUMNS))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*LEADING_COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_history(path: Path, log_history: Iterable[Mapping[str, Any]]) -> None:
    """Write the loss history CSV atomically."""
    from finetunekit.atomic import write_text

    write_text(path, history_csv(log_history))


def loss_history_callback(path: Path) -> Any:
    """A ``transformers`` callback that rewrites ``path`` from the trainer's log after each log."""
    from transformers import TrainerCallback

    class LossHistoryCallback(TrainerCallback):
        """Keeps the metrics CSV current, so a crash or a watcher sees the curve so far."""

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
            if state.is_world_process_zero:
                write_history(path, state.log_history)

    return LossHistoryCallback()


def release_memory_callback() -> Any:
    """A ``transformers`` callback that returns the C heap's free pages after every optimizer step
    (:func:`finetunekit.memory.release_freed_memory`): a step's activations and logits are freed,
    but without this the process keeps their pages (the example's training peak: 0.93× with it,
    ``benchmarks/bench_release_memory.py``)."""
    from transformers import TrainerCallback

    from finetunekit import memory

    class ReleaseMemoryCallback(TrainerCallback):
        """Trims the C heap at the end of each step."""

        def on_step_end(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
            memory.release_freed_memory()

    return ReleaseMemoryCallback()
