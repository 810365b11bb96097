"""Dataset loaders (one per file format), registered through ``register_dataset_loaders``.

A loader is an instance of a :class:`DatasetLoader` subclass with a ``name`` (the format,
as given to ``Dataset.load(format=...)``) and the file ``suffixes`` it claims. ``Dataset.load``
calls ``iter_records(path, report=..., progress=..., fields=...)``; a loader reports malformed
records through ``report.reject(error, reason)`` so that ``on_error="skip"`` can skip and count
them, and may ignore options it does not use.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pluggy

from finetunekit.errors import DataError

if TYPE_CHECKING:
    from finetunekit.registry import ComponentRegistry


class DatasetLoader(abc.ABC):
    """Reads one file format as a stream of ``(line_number, record)`` pairs."""

    name: str = ""
    suffixes: tuple[str, ...] = ()

    @abc.abstractmethod
    def iter_records(self, path: Path, **options: Any) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield each record with its 1-based line (or row) number.

        Options ``Dataset.load`` passes (a loader may ignore any): ``report``, a
        :class:`~finetunekit.data.reports.LoadReport` whose ``reject(error, reason)`` raises or
        counts a malformed record and whose ``lines_read`` the loader sets; ``progress``
        (``None``: a progress bar on terminals only); ``fields``, the source fields the caller
        needs (``None``: all).
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {', '.join(self.suffixes)}>"


def loader_registry(plugins: pluggy.PluginManager | None = None) -> ComponentRegistry[DatasetLoader]:
    """Every registered loader, by format name."""
    from finetunekit.registry import registry_for

    return registry_for("register_dataset_loaders", plugins)


def resolve_loader(
    path: Path, format: str | None = None, plugins: pluggy.PluginManager | None = None
) -> DatasetLoader:
    """The loader named ``format``, or else the one whose suffix ends ``path``'s name (longest wins).

    Raises a :class:`DataError` naming the file and the known formats and suffixes otherwise.
    """
    registry = loader_registry(plugins)
    known = "; ".join(f"{name} ({', '.join(loader.suffixes)})" for name, loader in registry)
    if format is not None:
        if format not in registry:
            raise DataError(f"unknown format {format!r}; expected one of: {known}", path=path)
        return registry.get(format)
    filename = path.name.lower()
    matches = [
        (len(suffix), loader)
        for _, loader in registry
        for suffix in loader.suffixes
        if filename.endswith(suffix.lower())
    ]
    if not matches:
        raise DataError(
            f"unknown format: no loader claims this file's suffix; pass format= with one of: {known}",
            path=path,
        )
    return max(matches, key=lambda match: match[0])[1]
