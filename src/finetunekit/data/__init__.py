"""Datasets: streaming loaders, cleaning, sampling and splitting."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetunekit.data.loaders import DatasetLoader

if TYPE_CHECKING:
    from finetunekit.data.dataset import Dataset
    from finetunekit.data.reports import CleanReport, LoadReport

SAMPLE_DATA_FILE = "amazon_titles_sample.json.gz"

_LAZY = {
    "Dataset": "finetunekit.data.dataset",
    "LoadReport": "finetunekit.data.reports",
    "CleanReport": "finetunekit.data.reports",
    "MissingFileError": "finetunekit.data.streams",
}

__all__ = ["DatasetLoader", "sample_data_path", "SAMPLE_DATA_FILE", *_LAZY]


def sample_data_path() -> Path:
    """The path of the shipped sample: a few thousand generated rows in the AmazonTitles schema."""
    return Path(str(resources.files("finetunekit.sample_data").joinpath(SAMPLE_DATA_FILE)))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'finetunekit.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
