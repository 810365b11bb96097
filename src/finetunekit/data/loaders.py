"""Dataset loaders (one per file format), registered through ``register_dataset_loaders``."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Iterator


class DatasetLoader(abc.ABC):
    """Reads one file format as a stream of ``(line_number, record)`` pairs."""

    name: str = ""
    suffixes: tuple[str, ...] = ()

    @abc.abstractmethod
    def iter_records(self, path: Path, **options: Any) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield each record with its 1-based line (or row) number."""
