"""The Evaluator: every model answers every question once, then every metric scores every answer."""

from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import pluggy

from finetunekit.chat import ChatModel, ScoredAnswer
from finetunekit.errors import ConfigError
from finetunekit.evaluation.base import Metric
from finetunekit.evaluation.evalsets import EvalItem, EvalSet
from finetunekit.evaluation.metrics import DEFAULT_METRICS
from finetunekit.evaluation.report import EvaluationReport


class Evaluator:
    """Runs chat models over eval sets and scores their answers with metrics.

    ``metrics`` are registered metric names (built-ins or plugins, built with default
    options) or ready :class:`Metric` instances; by default every built-in metric.
    """

    def __init__(
        self,
        metrics: Sequence[str | Mapping[str, Any] | Metric] | None = None,
        *,
        plugins: pluggy.PluginManager | None = None,
        progress: bool = True,
    ) -> None:
        specs = DEFAULT_METRICS if metrics is None else metrics
        if isinstance(specs, str):
            raise ConfigError("metrics must be a list of metric names, e.g. ['format', 'rouge_l']")
        self.metrics: list[Metric] = [_metric(m, plugins) for m in specs]
        names = [m.name for m in self.metrics]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"metrics {repeated} are listed more than once")
        if not self.metrics:
            raise ConfigError("an Evaluator needs at least one metric")
        self.progress = progress

    def evaluate(self, models: Mapping[str, Any], eval_sets: EvalSet | Sequence[EvalSet]) -> EvaluationReport:
        """Ask every model every question (one ``answer()`` call per model, then its ``release()``), score, and report."""
        from tqdm.auto import tqdm

        sets = [eval_sets] if isinstance(eval_sets, EvalSet) else list(eval_sets)
        _check_inputs(models, sets)
        items = [item for eval_set in sets for item in eval_set]
        conversations = [[dict(m) for m in item.messages] for item in items]
        answers: dict[str, list[str]] = {}
        confidences: dict[str, list[float | None]] = {}
        seconds: dict[str, float] = {}
        for label, model in tqdm(models.items(), desc="answering", unit="model", disable=not self.progress):
            start = time.perf_counter()
            scored = (model.answer_scored(conversations) if hasattr(model, "answer_scored")
                      else [ScoredAnswer(str(text)) for text in model.answer(conversations)])
            answers[label] = [str(a.text) for a in scored]
            confidences[label] = [a.confidence for a in scored]
            seconds[label] = time.perf_counter() - start
            if isinstance(model, ChatModel):
                model.release()  # e.g. its weights, before the next model loads its own
            if len(answers[label]) != len(items):
                raise RuntimeError(f"model {label!r} gave {len(answers[label])} answers to {len(items)} questions")
        records = []
        with tqdm(total=len(models) * len(items), desc="scoring", unit="answer", disable=not self.progress) as bar:
            for label in models:
                for position, (item, answer) in enumerate(zip(items, answers[label])):
                    records.append({**self._record(label, position, item, answer),
                                    "confidence": confidences[label][position]})
                    bar.update()
        return EvaluationReport.from_records(
            records,
            metrics=self.metrics,
            splits=[s.name for s in sets],
            models=list(models),
            items=items,
            answer_seconds=seconds,
        )

    def _record(self, label: str, position: int, item: EvalItem, answer: str) -> dict[str, Any]:
        """One answers-table row: the item, the model's answer and every metric's score."""
        record = {
            "split": item.split, "item": position, "row_id": item.row_id, "template": item.template,
            "question": item.question, "reference": item.target, "content": item.content,
            "model": label, "answer": answer,
        }
        for metric in self.metrics:
            value = metric.score_item(answer, item)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"metric {metric.name!r} returned {value!r}, not a number") from None
            if math.isnan(value) and metric.measures(item):
                raise ValueError(f"metric {metric.name!r} returned NaN for item {position} of {item.split!r}")
            record[metric.name] = value
        return record


def _metric(spec: str | Mapping[str, Any] | Metric, plugins: pluggy.PluginManager | None) -> Metric:
    """A metric from an instance, a registered name, or ``{"name": ..., "options": {...}}``."""
    from finetunekit.registry import get_metric

    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        return get_metric(spec, plugins=plugins)
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str) and set(spec) <= {"name", "options"}:
        return get_metric(spec["name"], plugins=plugins, **dict(spec.get("options") or {}))
    raise ConfigError(f"a metric must be a name, a Metric or {{'name': ..., 'options': {{...}}}}, got {spec!r}")


def _check_inputs(models: Mapping[str, Any], sets: Sequence[EvalSet]) -> None:
    """Clear errors for empty or ill-typed inputs."""
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("models must be a non-empty dict of label -> ChatModel, e.g. {'base': ..., 'fine-tuned': ...}")
    for label, model in models.items():
        if not callable(getattr(model, "answer", None)):
            raise ConfigError(f"model {label!r} has no answer() method; expected a ChatModel, got {model!r}")
    if not sets:
        raise ConfigError("eval_sets is empty; build them with build_eval_sets(...)")
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ConfigError(f"eval set names must be unique, got {names}")
