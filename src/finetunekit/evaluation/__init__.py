"""Evaluation: metrics, the Evaluator and its report."""

from finetunekit.evaluation.base import Metric

__all__ = ["Metric"]
