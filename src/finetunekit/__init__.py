"""finetunekit: fine-tune chat models on private tabular knowledge and measure what it bought.

Importing the package is cheap: it needs neither torch nor a network. Public names are
loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from finetunekit.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    "create_plugin_manager": "finetunekit.plugins",
    "get_trainer": "finetunekit.registry",
    "get_chat_model": "finetunekit.registry",
    "get_metric": "finetunekit.registry",
    "UnknownComponentError": "finetunekit.registry",
    "DuplicateComponentError": "finetunekit.registry",
    "FinetunekitError": "finetunekit.errors",
    "ConfigError": "finetunekit.errors",
    "DataError": "finetunekit.errors",
    "TemplateError": "finetunekit.errors",
    "TrainingError": "finetunekit.errors",
    "MissingDependencyError": "finetunekit.errors",
    "PromptTemplateSet": "finetunekit.examples.prompts",
    "PromptGenerator": "finetunekit.examples.prompts",
    "ResponseFormatter": "finetunekit.examples.formatters",
    "Dataset": "finetunekit.data.dataset",
    "DatasetLoader": "finetunekit.data.loaders",
    "ExampleSet": "finetunekit.examples.example_set",
    "build_examples": "finetunekit.examples.build",
    "load_chat_examples": "finetunekit.examples.chat_formats",
    "chat_eval_sets": "finetunekit.evaluation.chat_evalsets",
    "Trainer": "finetunekit.training",
    "FineTunedModel": "finetunekit.training",
    "ChatModel": "finetunekit.chat",
    "ModelSource": "finetunekit.backends.local.sources",
    "Metric": "finetunekit.evaluation.base",
    "Evaluator": "finetunekit.evaluation.evaluator",
    "EvaluationReport": "finetunekit.evaluation.report",
    "EvalSet": "finetunekit.evaluation.evalsets",
    "build_eval_sets": "finetunekit.evaluation.evalsets",
    "Pipeline": "finetunekit.pipeline",
    "ComponentOptions": "finetunekit.component",
    "option": "finetunekit.component",
    "CleaningRules": "finetunekit.data.cleaning",
    "print_report": "finetunekit.evaluation.report",
    "PipelineConfig": "finetunekit.config",
}

__all__ = ["hookimpl", "hookspec", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'finetunekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from finetunekit.component import ComponentOptions, option
    from finetunekit.config import PipelineConfig
    from finetunekit.data.cleaning import CleaningRules
    from finetunekit.data.dataset import Dataset
    from finetunekit.data.loaders import DatasetLoader
    from finetunekit.errors import (
        ConfigError,
        DataError,
        FinetunekitError,
        MissingDependencyError,
        TemplateError,
        TrainingError,
    )
    from finetunekit.evaluation.base import Metric
    from finetunekit.evaluation.evalsets import EvalSet, build_eval_sets
    from finetunekit.evaluation.evaluator import Evaluator
    from finetunekit.evaluation.report import EvaluationReport, print_report
    from finetunekit.examples.build import build_examples
    from finetunekit.examples.chat_formats import load_chat_examples
    from finetunekit.evaluation.chat_evalsets import chat_eval_sets
    from finetunekit.examples.example_set import ExampleSet
    from finetunekit.examples.formatters import ResponseFormatter
    from finetunekit.chat import ChatModel
    from finetunekit.backends.local.sources import ModelSource
    from finetunekit.pipeline import Pipeline
    from finetunekit.plugins import create_plugin_manager
    from finetunekit.examples.prompts import PromptGenerator, PromptTemplateSet
    from finetunekit.registry import (
        DuplicateComponentError,
        UnknownComponentError,
        get_chat_model,
        get_metric,
        get_trainer,
    )
    from finetunekit.training import FineTunedModel, Trainer
