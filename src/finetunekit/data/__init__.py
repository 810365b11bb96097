"""Datasets: streaming loaders, cleaning, sampling and splitting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetunekit.data.loaders import DatasetLoader

if TYPE_CHECKING:
    from finetunekit.data.cleaning import CleaningRules
    from finetunekit.data.dataset import Dataset
    from finetunekit.data.reports import CleanReport, LoadReport

_LAZY = {
    "Dataset": "finetunekit.data.dataset",
    "CleaningRules": "finetunekit.data.cleaning",
    "LoadReport": "finetunekit.data.reports",
    "CleanReport": "finetunekit.data.reports",
    "MissingFileError": "finetunekit.data.streams",
}

__all__ = ["DatasetLoader", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'finetunekit.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
