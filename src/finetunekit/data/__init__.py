"""Datasets: streaming loaders, cleaning, sampling and splitting."""

from finetunekit.data.loaders import DatasetLoader

__all__ = ["DatasetLoader"]
