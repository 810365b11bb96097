"""The ``datasets`` loader: Hugging Face ``datasets`` data as rows (needs ``pip install datasets``).

Reads, with ``format="datasets"`` (``dataset.format = "datasets"`` in a config):

- a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (``load_from_disk``);
- an Arrow file (``.arrow``, also found by its suffix) or a Parquet, JSON Lines or CSV file;
- a directory of such data files (``load_dataset(directory)``);
- a hub dataset id (``owner/name``) only with the loader option ``allow_hub=True``.

Loader options (``loader_options`` / ``dataset.loader_options``): ``split`` (default: ``train``,
or the only split) and ``allow_hub``. The row number is the 1-based position in the split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, Iterator

from finetunekit.data.loaders import DatasetLoader
from finetunekit.data.reports import LoadReport
from finetunekit.errors import DataError, MissingDependencyError
from finetunekit.hookspecs import hookimpl

BATCH_ROWS = 1024
#: ``datasets`` builders of single data files, by suffix.
FILE_BUILDERS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
SAVED_MARKERS = ("state.json", "dataset_dict.json")


class HFDatasetsLoader(DatasetLoader):
    """Rows of a Hugging Face ``datasets`` dataset (local by default; see the module doc)."""

    name = "datasets"
    suffixes = (".arrow",)

    def iter_records(
        self,
        path: Path,
        *,
        report: LoadReport | None = None,
        fields: Collection[str] | None = None,
        split: str | None = None,
        allow_hub: bool = False,
        **options: Any,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(row_number, record)`` for each row of the chosen split."""
        report = report if report is not None else LoadReport(source=str(path), format=self.name)
        dataset = open_dataset(path, split=split, allow_hub=allow_hub)
        if fields is not None:
            dataset = dataset.select_columns([name for name in dataset.column_names if name in set(fields)])
        row = 0
        for batch in dataset.iter(batch_size=BATCH_ROWS):
            columns = list(batch)
            for values in zip(*(batch[name] for name in columns)):
                row += 1
                yield row, dict(zip(columns, values))
        report.lines_read = row


def open_dataset(path: Path, *, split: str | None = None, allow_hub: bool = False) -> Any:
    """The ``datasets.Dataset`` that ``path`` names (one split of it)."""
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError("datasets (needed for format 'datasets')", "pip install datasets") from exc
    try:
        if path.is_dir() and any((path / marker).is_file() for marker in SAVED_MARKERS):
            loaded = datasets.load_from_disk(str(path))
        elif path.is_file() and path.suffix.lower() == ".arrow":
            loaded = datasets.Dataset.from_file(str(path))
        elif path.is_file():
            builder = FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise DataError(
                    f"the datasets loader reads .arrow, {', '.join(sorted(FILE_BUILDERS))} files or a saved "
                    "dataset directory", path=path,
                )
            loaded = datasets.load_dataset(builder, data_files=str(path))
        elif path.is_dir():
            loaded = datasets.load_dataset(str(path))
        elif allow_hub:
            loaded = datasets.load_dataset(str(path))
        else:
            raise DataError(
                "no such file or directory; a Hugging Face hub dataset id needs the loader option "
                "allow_hub = true (dataset.loader_options) and a reachable hub", path=path,
            )
    except DataError:
        raise
    except Exception as exc:  # datasets raises many kinds (FileNotFoundError, DatasetNotFoundError, ...)
        raise DataError(f"datasets could not load this ({type(exc).__name__}: {exc})", path=path) from exc
    return _one_split(loaded, split, path)


def _one_split(loaded: Any, split: str | None, path: Path) -> Any:
    """``loaded`` itself (a Dataset), or the chosen split of a DatasetDict."""
    if not hasattr(loaded, "keys"):
        own = getattr(loaded, "split", None)
        if split is not None and own is not None and str(own) != split:
            raise DataError(f"this dataset is the split {str(own)!r}, not {split!r}", path=path)
        return loaded
    splits = list(loaded.keys())
    if split is None:
        split = "train" if "train" in splits else (splits[0] if len(splits) == 1 else None)
        if split is None:
            raise DataError(f"several splits {splits}; choose one with the loader option split", path=path)
    if split not in splits:
        raise DataError(f"no split {split!r}; the splits are {splits}", path=path)
    return loaded[split]


@hookimpl
def register_dataset_loaders(register: Any) -> None:
    """Register HFDatasetsLoader."""
    register(HFDatasetsLoader())
