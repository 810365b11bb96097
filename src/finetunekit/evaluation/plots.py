"""PNG plots for reports: metric bars by model and split, and the training loss curve.

matplotlib is an optional extra (``pip install 'finetunekit[report]'``); without it
:func:`render_plots` returns no images and a note saying the plots were skipped. Figures are
drawn with the object-oriented API (no ``pyplot``), so no global backend state is touched.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from finetunekit.evaluation.report import EvaluationReport

METRICS_PNG = "metrics.png"
LOSS_PNG = "training_loss.png"
SKIPPED_NOTE = "Plots were skipped: matplotlib is not installed (pip install 'finetunekit[report]')."


def render_plots(report: EvaluationReport, loss: pd.DataFrame | None) -> tuple[dict[str, bytes], str | None]:
    """``({file name: PNG bytes}, note)``; the note is set when plots were skipped."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        return {}, SKIPPED_NOTE
    images = {METRICS_PNG: metric_bars(report)}
    if loss is not None:
        images[LOSS_PNG] = loss_curve(loss)
    return images, None


def metric_bars(report: EvaluationReport) -> bytes:
    """One panel per metric: a group of bars per split, one bar per model."""
    from matplotlib.figure import Figure

    metrics = list(report.metrics)
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    width = 0.8 / max(1, len(report.models))
    for ax, metric in zip(axes, metrics):
        top = 1.0
        for index, model in enumerate(report.models):
            values = [_value(report, model, split, metric) for split in report.splits]
            positions = [s + (index - (len(report.models) - 1) / 2) * width for s in range(len(report.splits))]
            ax.bar(positions, values, width=width, label=model)  # NaN (empty split): no bar
            top = max([top, *(v for v in values if not math.isnan(v))])
        better = report.metrics[metric].get("higher_is_better")
        suffix = "" if better is None else (" (higher is better)" if better else " (lower is better)")
        ax.set_title(metric + suffix, fontsize=10)
        ax.set_xticks(range(len(report.splits)), report.splits, fontsize=8)
        ax.set_ylim(0, top * 1.05)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncols=len(labels), fontsize=9)
    return _png(figure)


def loss_curve(loss: pd.DataFrame) -> bytes:
    """Training loss by step, with the eval loss when the table has one."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), layout="constrained")
    ax = figure.subplots()
    train = loss.dropna(subset=["loss"])
    ax.plot(train["step"], train["loss"], label="training loss")
    evals = loss.dropna(subset=["eval_loss"]) if "eval_loss" in loss.columns else loss.iloc[:0]
    if not evals.empty:
        ax.plot(evals["step"], evals["eval_loss"], marker="o", label="eval loss (validation examples)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training and eval loss" if not evals.empty else "Training loss")
    ax.legend()
    return _png(figure)


def _value(report: EvaluationReport, model: str, split: str, metric: str) -> float:
    try:
        return report.value(model, split, metric)
    except KeyError:
        return 0.0


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()
