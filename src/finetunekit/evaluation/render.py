"""Markdown and HTML renderings of an :class:`~finetunekit.evaluation.report.EvaluationReport`.

Every text that comes from data (questions, references, answers, names) is HTML-escaped in
both formats, so an answer holding ``<script>`` shows as text; in Markdown its link and image
syntax is escaped too (:mod:`finetunekit.evaluation.safe_text`). The HTML page is self-contained:
inline CSS, plots embedded as ``data:`` URIs, no external scripts, fonts or links.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from finetunekit.evaluation.plots import LOSS_PNG, METRICS_PNG
from finetunekit.evaluation.safe_text import md_text

if TYPE_CHECKING:
    import pandas as pd

    from finetunekit.evaluation.report import EvaluationReport

#: Answers and references longer than this are cut in the reports (answers.csv has them whole).
MAX_TEXT_CHARS = 1200


@dataclass
class Example:
    """One side-by-side example: a question, its reference, and each model's answer with scores."""

    split: str
    item: int
    why: str
    question: str
    reference: str
    answers: list[tuple[str, str, dict[str, float]]]


def examples(report: EvaluationReport, split: str, n: int) -> list[Example]:
    """The side-by-side examples of ``split`` (see ``EvaluationReport.example_items``)."""
    ids = report.example_items(split, n)
    metric = report.primary_metric()
    frame = report.answers
    chosen = frame[frame.split == split]["item"].nunique() > n  # else every item is shown
    out = []
    for rank, item in enumerate(ids):
        rows = frame[frame["item"] == item]
        first = rows.iloc[0]
        worst = chosen and metric is not None and rank < (n + 1) // 2
        answers = [
            (row["model"], str(row["answer"]), {m: float(row[m]) for m in report.metrics if m in row})
            for _, row in rows.iterrows()
        ]
        why = f"among the lowest {metric}" if worst else ("drawn at random" if chosen else "every item shown")
        out.append(Example(split, int(item), why,
                           str(first["question"]), str(first["reference"]), answers))
    return out


def clip(text: str) -> str:
    """``text`` cut to :data:`MAX_TEXT_CHARS`, saying how much was left out."""
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return f"{text[:MAX_TEXT_CHARS]}… [{len(text) - MAX_TEXT_CHARS} more characters]"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table, cells escaped."""
    lines = ["| " + " | ".join(md_text(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _scores(scores: Mapping[str, float]) -> str:
    from finetunekit.evaluation.report import format_value

    return ", ".join(f"{name} {format_value(value)}" for name, value in scores.items())


def _metric_notes(report: EvaluationReport) -> list[str]:
    notes = []
    for name, info in report.metrics.items():
        better = info.get("higher_is_better")
        direction = "" if better is None else ("higher is better" if better else "lower is better")
        reference = info.get("reference")
        against = "of the answer alone" if reference == "none" else f"against the reference {reference}"
        notes.append(f"{name}: {against}; {direction}".rstrip("; "))
    return notes


def _loss_line(loss: pd.DataFrame | None) -> str | None:
    if loss is None:
        return None
    train = loss.dropna(subset=["loss"])
    if train.empty:
        return "Training metrics were given but hold no loss values."
    line = (f"Training loss: {train['loss'].iloc[0]:.4f} at step {train['step'].iloc[0]} → "
            f"{train['loss'].iloc[-1]:.4f} at step {train['step'].iloc[-1]} ({len(train)} logged steps).")
    evals = loss.dropna(subset=["eval_loss"]) if "eval_loss" in loss.columns else loss.iloc[:0]
    if evals.empty:
        return line
    best = evals.loc[evals["eval_loss"].idxmin()]
    return line + (f" Eval loss (held-out validation examples): {evals['eval_loss'].iloc[0]:.4f} at step "
                   f"{evals['step'].iloc[0]} → {evals['eval_loss'].iloc[-1]:.4f} at step {evals['step'].iloc[-1]} "
                   f"({len(evals)} evaluations; lowest {best['eval_loss']:.4f} at step {int(best['step'])}).")


def _header_lines(report: EvaluationReport) -> list[str]:
    counts = report.answers[report.answers.model == report.models[0]].groupby("split").size()
    sizes = ", ".join(f"{s} ({int(counts.get(s, 0))} questions)" for s in report.splits)
    timing = ", ".join(f"{m} {t:.1f} s" for m, t in report.answer_seconds.items())
    lines = [f"Models: {', '.join(report.models)}.", f"Splits: {sizes}."]
    return lines + ([f"Answering time: {timing}."] if timing else [])


def render_markdown(report: EvaluationReport, images: Mapping[str, bytes], note: str | None,
                    loss: pd.DataFrame | None, *, n_examples: int = 4) -> str:
    """The report as Markdown (plots linked as files beside it)."""
    out = ["# Evaluation report", ""]
    out += [md_text(line) for line in _header_lines(report)] + ["", "## Summary", "", report.to_markdown(), ""]
    if findings := report.findings():
        out += ["## Findings", ""] + [f"- {md_text(line)}" for line in findings] + [""]
    out += [f"- {md_text(line)}" for line in _metric_notes(report)] + [""]
    out += ["## Plots", ""]
    if note:
        out += [md_text(note), ""]
    if METRICS_PNG in images:
        out += [f"![metrics by model and split]({METRICS_PNG})", ""]
    if (line := _loss_line(loss)) is not None:
        out += [md_text(line), ""]
    if LOSS_PNG in images:
        out += [f"![training loss]({LOSS_PNG})", ""]
    out += ["## Examples", ""]
    for split in report.splits:
        out += [f"### {md_text(split)}", ""]
        for ex in examples(report, split, n_examples):
            out += [f"#### Item {ex.item} ({md_text(ex.why)})", "",
                    f"**Question:** {md_text(clip(ex.question))}", "",
                    f"**Reference:** {md_text(clip(ex.reference))}", ""]
            for model, answer, scores in ex.answers:
                out += [f"**{md_text(model)}** ({md_text(_scores(scores))}):", "",
                        f"> {md_text(clip(answer)) or '(empty answer)'}", ""]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
pre{white-space:pre-wrap;word-wrap:break-word;background:#f8f8f8;border:1px solid #e3e3e3;padding:.6em;margin:.3em 0 1em}
.example{border-left:4px solid #ccd;padding-left:1em;margin:1.5em 0}.scores{color:#555;font-size:.9em}
img{max-width:100%}
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_summary(report: EvaluationReport) -> str:
    from finetunekit.evaluation.report import format_value

    pivot = report.pivot()
    head = "".join(f"<th>{_h(c)}</th>" for c in ["split", "metric", *report.models])
    body = []
    for (split, metric), values in zip(pivot.index, pivot.to_numpy()):
        cells = "".join(f'<td class="num">{_h(format_value(v))}</td>' for v in values)
        body.append(f"<tr><td>{_h(split)}</td><td>{_h(metric)}</td>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(images: Mapping[str, bytes], name: str, alt: str) -> str:
    data = base64.b64encode(images[name]).decode("ascii")
    return f'<p><img alt="{_h(alt)}" src="data:image/png;base64,{data}"></p>'


def render_html(report: EvaluationReport, images: Mapping[str, bytes], note: str | None,
                loss: pd.DataFrame | None, *, n_examples: int = 4) -> str:
    """The report as one self-contained HTML page."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>Evaluation report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>Evaluation report</h1>"]
    parts += [f"<p>{_h(line)}</p>" for line in _header_lines(report)]
    parts += ["<h2>Summary</h2>", _html_summary(report)]
    if findings := report.findings():
        parts += ["<h2>Findings</h2>", "<ul>", *(f"<li>{_h(line)}</li>" for line in findings), "</ul>"]
    parts += ["<ul>"]
    parts += [f"<li>{_h(line)}</li>" for line in _metric_notes(report)] + ["</ul>", "<h2>Plots</h2>"]
    if note:
        parts.append(f"<p>{_h(note)}</p>")
    if METRICS_PNG in images:
        parts.append(_img(images, METRICS_PNG, "metrics by model and split"))
    if (line := _loss_line(loss)) is not None:
        parts.append(f"<p>{_h(line)}</p>")
    if LOSS_PNG in images:
        parts.append(_img(images, LOSS_PNG, "training loss"))
    parts.append("<h2>Examples</h2>")
    for split in report.splits:
        parts.append(f"<h3>{_h(split)}</h3>")
        for ex in examples(report, split, n_examples):
            parts += ['<div class="example">', f"<h4>Item {ex.item} ({_h(ex.why)})</h4>",
                      f"<p><b>Question:</b></p><pre>{_h(clip(ex.question))}</pre>",
                      f"<p><b>Reference:</b></p><pre>{_h(clip(ex.reference))}</pre>"]
            for model, answer, scores in ex.answers:
                parts += [f'<p><b>{_h(model)}</b> <span class="scores">{_h(_scores(scores))}</span></p>',
                          f"<pre>{_h(clip(answer)) or '(empty answer)'}</pre>"]
            parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
