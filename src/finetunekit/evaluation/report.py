"""EvaluationReport: the summary and per-answer tables of an evaluation, and how they are saved."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from finetunekit.atomic import write_bytes, write_text
from finetunekit.errors import DataError
from finetunekit.evaluation.safe_text import guarded_frame, unguarded_frame

if TYPE_CHECKING:
    from finetunekit.evaluation.base import Metric

SUMMARY_COLUMNS = ["model", "split", "metric", "value", "n"]
ITEM_COLUMNS = ["split", "item", "row_id", "template", "question", "reference", "content", "model", "answer",
                "confidence"]
#: Splits whose products the models were trained on, and the one of products never seen.
KNOWN_SPLITS, UNKNOWN_SPLIT = ("train-questions", "paraphrased"), "unseen-products"


class EvaluationReport:
    """What an evaluation found.

    ``summary``: tidy DataFrame with columns model, split, metric, value, n (one row per
    model × split × metric, plus extra figures such as ``answer_length:mean_words``).
    ``answers``: one row per model × question: the question, its reference, the answer and
    each metric's score. ``metrics``: per metric, its ``reference`` and ``higher_is_better``.
    """

    def __init__(
        self,
        summary: pd.DataFrame,
        answers: pd.DataFrame,
        *,
        metrics: Mapping[str, Mapping[str, Any]],
        models: Sequence[str],
        splits: Sequence[str],
        answer_seconds: Mapping[str, float] | None = None,
    ) -> None:
        self.summary = summary
        self.answers = answers
        self.metrics = {name: dict(info) for name, info in metrics.items()}
        self.models = list(models)
        self.splits = list(splits)
        self.answer_seconds = dict(answer_seconds or {})

    @classmethod
    def from_records(
        cls,
        records: list[dict[str, Any]],
        *,
        metrics: Sequence[Metric],
        splits: Sequence[str],
        models: Sequence[str],
        items: Sequence[Any],
        answer_seconds: Mapping[str, float] | None = None,
    ) -> EvaluationReport:
        """Build the report from scored answer records, aggregating with each metric's own rule."""
        answers = pd.DataFrame(records, columns=[*ITEM_COLUMNS, *(m.name for m in metrics)])
        rows = []
        for model in models:
            for split in splits:
                picked = [(r, items[r["item"]]) for r in records if r["model"] == model and r["split"] == split]
                for metric in metrics:
                    if picked and not any(metric.applies_to(item) for _, item in picked):
                        continue  # a metric of other splits (abstention, false_refusal)
                    scores = [r[metric.name] for r, _ in picked]
                    rows.append([model, split, metric.name, float(metric.aggregate(scores)), len(scores)])
                    extra = metric.extra_figures([r["answer"] for r, _ in picked], [i for _, i in picked])
                    rows.extend([model, split, f"{metric.name}:{key}", float(value), len(scores)]
                                for key, value in extra.items())
            rows.extend(_confidence_rows(model, [r for r in records if r["model"] == model]))
        info = {m.name: {"reference": m.reference, "higher_is_better": m.higher_is_better} for m in metrics}
        if any(row[2] == "confidence_auroc" for row in rows):
            info["confidence_auroc"] = {"reference": "none", "higher_is_better": True}
        return cls(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), answers, metrics=info, models=models,
                   splits=splits, answer_seconds=answer_seconds)

    def findings(self) -> list[str]:
        """Plain sentences on what matters most: which model invents answers about products it
        never saw, which refuses products it knows, how well confidence tells them apart."""
        lines = []
        for model in self.models:
            abstention = self._figure(model, UNKNOWN_SPLIT, "abstention")
            if abstention is not None and abstention < 0.5:
                lines.append(f"{model} invents answers about products it never saw: it answered "
                             f"{1 - abstention:.0%} of the unseen-products questions instead of saying it "
                             f"does not know (abstention {abstention:.2f}).")
            elif abstention is not None:
                lines.append(f"{model} says it does not know {abstention:.0%} of the products it never saw.")
            for split in KNOWN_SPLITS:
                wrong = self._figure(model, split, "false_refusal")
                if wrong is not None and wrong > 0.05:
                    lines.append(f"{model} refuses {wrong:.0%} of the {split} questions, about products of the training data.")
            separation = self._figure(model, UNKNOWN_SPLIT, "confidence_auroc")
            if separation is not None:
                lines.append(f"{model}'s confidence tells trained from unseen products with AUROC {separation:.2f} "
                             "(0.5 = not at all, 1 = perfectly).")
        return lines

    def _figure(self, model: str, split: str, metric: str) -> float | None:
        try:
            value = self.value(model, split, metric)
        except KeyError:
            return None
        return None if math.isnan(value) else value

    def value(self, model: str, split: str, metric: str) -> float:
        """One figure of the summary."""
        s = self.summary
        found = s[(s.model == model) & (s.split == split) & (s.metric == metric)]
        if found.empty:
            raise KeyError(f"no summary figure for model={model!r}, split={split!r}, metric={metric!r}")
        return float(found.value.iloc[0])

    def pivot(self) -> pd.DataFrame:
        """The summary as a table: rows (split, metric), one column per model, in evaluation order."""
        table = self.summary.pivot(index=["split", "metric"], columns="model", values="value")
        order = list(dict.fromkeys(zip(self.summary.split, self.summary.metric)))
        return table.reindex(pd.MultiIndex.from_tuples(order, names=["split", "metric"]))[self.models]

    def to_markdown(self) -> str:
        """The summary table (split × metric rows, one column per model) as Markdown."""
        from finetunekit.evaluation.render import markdown_table

        pivot = self.pivot()
        rows = [[split, metric, *(format_value(v) for v in values)]
                for (split, metric), values in zip(pivot.index, pivot.to_numpy())]
        return markdown_table(["split", "metric", *self.models], rows)

    def __str__(self) -> str:
        return self.to_markdown()

    def primary_metric(self) -> str | None:
        """The metric used to pick the worst examples: the first reference-based higher-is-better one."""
        for name, info in self.metrics.items():
            if info.get("higher_is_better") and info.get("reference") in ("content", "target"):
                return name
        return next(iter(self.metrics), None)

    def example_items(self, split: str, n: int = 4, seed: int = 0) -> list[int]:
        """``n`` item ids of ``split`` to show side by side, chosen deterministically.

        Half are the worst (lowest mean primary-metric score over the models, ties by item id),
        the rest drawn with ``seed`` from the others.
        """
        frame = self.answers[self.answers.split == split]
        ids = list(dict.fromkeys(frame["item"]))
        metric = self.primary_metric()
        if metric is None or len(ids) <= n:
            return ids[:n]
        means = frame.groupby("item", sort=True)[metric].mean()
        worst = sorted(ids, key=lambda i: (means[i], i))[: (n + 1) // 2]
        rest = [i for i in ids if i not in worst]
        return sorted(worst, key=lambda i: (means[i], i)) + sorted(random.Random(seed).sample(rest, n - len(worst)))

    def save(self, directory: str | Path, training_metrics: str | Path | pd.DataFrame | None = None,
             *, n_examples: int = 4) -> Path:
        """Write summary.csv, answers.csv, meta.json, report.md, report.html and PNG plots.

        ``training_metrics``: the trainer's metrics CSV (or DataFrame) with ``step`` and ``loss``
        columns, plotted as the training loss curve. Without matplotlib the reports are still
        written and say that the plots were skipped. Every file is written atomically.
        """
        from finetunekit.evaluation import plots, render

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        loss = read_training_metrics(training_metrics) if training_metrics is not None else None
        write_text(out / "summary.csv", guarded_frame(self.summary).to_csv(index=False))
        write_text(out / "answers.csv", guarded_frame(self.answers).to_csv(index=False))
        write_text(out / "meta.json", json.dumps(self._meta(), indent=2, default=str) + "\n")
        images, note = plots.render_plots(self, loss)
        for name, data in images.items():
            write_bytes(out / name, data)
        write_text(out / "report.md", render.render_markdown(self, images, note, loss, n_examples=n_examples))
        write_text(out / "report.html", render.render_html(self, images, note, loss, n_examples=n_examples))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> EvaluationReport:
        """A report read back from a directory written by :meth:`save`."""
        root = Path(directory)
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        summary = unguarded_frame(pd.read_csv(root / "summary.csv", keep_default_na=False))
        # an empty split's figure is NaN, written as an empty cell
        summary["value"] = pd.to_numeric(summary["value"].replace("", math.nan))
        answers = unguarded_frame(pd.read_csv(root / "answers.csv", keep_default_na=False))
        return cls(summary, answers, metrics=meta["metrics"], models=meta["models"], splits=meta["splits"],
                   answer_seconds=meta.get("answer_seconds"))

    def _meta(self) -> dict[str, Any]:
        return {"models": self.models, "splits": self.splits, "metrics": self.metrics,
                "answer_seconds": self.answer_seconds}


#: How a figure of an empty split (NaN: nothing measured) is shown in tables.
NOT_MEASURED = "–"


def format_value(value: float) -> str:
    """A figure for a table: three decimals in [0, 1], one beyond (e.g. mean words);
    :data:`NOT_MEASURED` for NaN (a metric over an empty split)."""
    if pd.isna(value):
        return NOT_MEASURED
    return f"{value:.3f}" if -1 <= value <= 1 else f"{value:.1f}"


def read_training_metrics(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """The training metrics table, checked to have ``step`` and ``loss`` columns."""
    path = None if isinstance(source, pd.DataFrame) else Path(source)
    try:
        frame = source if path is None else pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read the training metrics CSV: {exc}", path=path) from exc
    missing = [c for c in ("step", "loss") if c not in frame.columns]
    if missing:
        raise DataError(
            f"training metrics need columns 'step' and 'loss'; missing {missing} (columns: {list(frame.columns)})",
            path=path, field=missing[0],
        )
    return frame


def _confidence_rows(model: str, records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The summary row of how well ``model``'s confidence separates trained from unseen products."""
    from finetunekit.evaluation.confidence import auroc

    scores = [(r["split"], r.get("confidence")) for r in records]
    if not scores or any(c is None or (isinstance(c, float) and math.isnan(c)) for _, c in scores):
        return []
    known = [float(c) for s, c in scores if s in KNOWN_SPLITS]
    unknown = [float(c) for s, c in scores if s == UNKNOWN_SPLIT]
    if not known or not unknown:
        return []
    return [[model, UNKNOWN_SPLIT, "confidence_auroc", auroc(known, unknown), len(known) + len(unknown)]]


def print_report(report: EvaluationReport, where: str | Path) -> None:
    """Print the report's summary table (split × metric rows, one column per model), its
    findings and where its files are (``where``: the directory it was saved to)."""
    print(report.to_markdown())
    findings = report.findings()
    if findings:
        print()
        print("\n".join(f"- {line}" for line in findings))
    print(f"\nreport: {Path(where) / 'report.md'} (also report.html)")
