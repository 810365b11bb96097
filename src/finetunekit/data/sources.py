"""Where rows come from: a file through its loader, a pandas DataFrame, or a list of records.

Each row is a dict with the (renamed) source fields and ``_row_id``: the record's line or row
number in a file, the DataFrame index, or the position in a list (unless the record already
carries a ``_row_id``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from finetunekit.data.loaders import DatasetLoader
from finetunekit.data.reports import LoadReport
from finetunekit.errors import ConfigError, DataError
from finetunekit.data.rows import ROW_ID_FIELD

Columns = Mapping[str, str] | Sequence[str] | None

#: Prefix of a source shipped inside an installed package: ``package:PACKAGE/FILE``.
PACKAGE_SOURCE_PREFIX = "package:"


def source_path(source: str | os.PathLike[str]) -> Path:
    """The file ``source`` names: a path, or ``package:PACKAGE/FILE`` for package data."""
    text = os.fspath(source)
    if not text.startswith(PACKAGE_SOURCE_PREFIX):
        return Path(text)
    package, _, name = text[len(PACKAGE_SOURCE_PREFIX):].partition("/")
    try:
        root = resources.files(package)
    except (ModuleNotFoundError, TypeError, ValueError) as exc:
        raise DataError(f"{text}: no installed package {package!r} ({exc}); expected package:PACKAGE/FILE") from None
    if not name:
        raise DataError(f"{text}: no file named after the package; expected package:PACKAGE/FILE")
    return Path(str(root.joinpath(name)))


def normalize_columns(columns: Columns) -> dict[str, str] | None:
    """``columns`` as ``{source_field: row_field}``; a list of names keeps them unrenamed."""
    if columns is None:
        return None
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, Mapping):
        mapping = dict(columns)
    else:
        mapping = {name: name for name in columns}
    for source, target in mapping.items():
        if not isinstance(source, str) or not isinstance(target, str) or not source or not target:
            raise ConfigError(f"columns must map field names to field names, got {source!r}: {target!r}")
    targets = list(mapping.values())
    if len(set(targets)) != len(targets):
        raise ConfigError(f"columns maps two source fields to the same name: {mapping}")
    if ROW_ID_FIELD in targets:
        raise ConfigError(f"{ROW_ID_FIELD!r} is reserved for the row id; map the column to another name")
    return mapping


def map_columns(
    records: Iterable[tuple[Any, Mapping[str, Any]]],
    columns: dict[str, str] | None,
    report: LoadReport,
    label: str,
    *,
    fresh: bool = False,
) -> Iterator[dict[str, Any]]:
    """Turn ``(row_id, record)`` pairs into rows: rename/select ``columns``, add ``_row_id``.

    A record that lacks a mapped field is rejected through ``report`` (raise, or skip and count
    under ``missing_field``), and so is one whose mapped field holds an array or an object
    where text or a number is expected (``wrong_type``: nothing is turned into its Python
    repr). ``fresh``: the records are new dicts nobody else holds, so they are used as they
    are instead of copied.
    """
    if columns is None:
        for row_id, record in records:
            row = record if fresh else dict(record)
            if ROW_ID_FIELD not in row:
                row[ROW_ID_FIELD] = row_id
            yield row
        return
    pairs = list(columns.items())
    for row_id, record in records:
        try:
            row = {target: record[source] for source, target in pairs}
        except KeyError:
            missing = next(source for source, _ in pairs if source not in record)
            fields = ", ".join(map(str, record)) or "none"
            report.reject(
                DataError(
                    f"missing column {missing!r} (columns= maps it to {columns[missing]!r}); "
                    f"this record has: {fields}" + ("" if isinstance(row_id, int) else f" (row {row_id!r})"),
                    path=label,
                    line=row_id if isinstance(row_id, int) else None,
                    field=missing,
                ),
                "missing_field",
            )
            continue
        wrong = next((source for source, target in pairs if not _is_scalar(row[target])), None)
        if wrong is not None:
            report.reject(
                DataError(
                    f"expected text or a number, got {_kind(record[wrong])}"
                    + ("" if isinstance(row_id, int) else f" (row {row_id!r})"),
                    path=label,
                    line=row_id if isinstance(row_id, int) else None,
                    field=wrong,
                ),
                "wrong_type",
            )
            continue
        row[ROW_ID_FIELD] = record.get(ROW_ID_FIELD, row_id)
        yield row


#: Types a mapped field may hold (a missing value is None, or NaN from a DataFrame).
_SCALARS = (str, int, float, bool, type(None))


def _is_scalar(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    return not isinstance(value, (Mapping, list, tuple, set, bytes)) and getattr(value, "ndim", 0) == 0


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple, set)) or getattr(value, "ndim", 0):
        return "an array"
    return f"a {type(value).__name__}"


def file_rows(
    path: Path,
    loader: DatasetLoader,
    columns: dict[str, str] | None,
    report: LoadReport,
    *,
    limit: int | None,
    progress: bool | None,
    options: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream the rows of ``path``, stopping (and closing the file) after ``limit`` rows;
    ``options`` are further keyword arguments for the loader."""
    fields = None if columns is None else list(columns)
    records = loader.iter_records(path, report=report, progress=progress, fields=fields, **(options or {}))
    last_line = 0

    def numbered() -> Iterator[tuple[int, Mapping[str, Any]]]:
        nonlocal last_line
        for line_no, record in records:
            last_line = line_no
            yield line_no, record

    if limit is None:  # the whole file: no line bookkeeping needed, the loader counts lines
        rows = map_columns(records, columns, report, str(path), fresh=True)
        try:
            for row in rows:
                report.rows += 1
                yield row
            report.complete = True
        finally:
            rows.close()
            records.close()
        return
    rows = map_columns(numbered(), columns, report, str(path), fresh=True)
    try:
        for _, row in zip(range(limit), rows):
            report.rows += 1
            yield row
    finally:
        report.lines_read = max(report.lines_read, last_line)
        rows.close()
        records.close()


def record_rows(
    records: Iterable[Any], report: LoadReport, label: str = "<records>"
) -> Iterator[tuple[Any, Mapping[str, Any]]]:
    """``(position, record)`` pairs from plain mappings; anything else is rejected through
    ``report`` (raise, or skip and count under ``not_an_object``)."""
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            report.reject(
                DataError(
                    f"record {position} is a {type(record).__name__}, expected a mapping of field names to values",
                    path=label,
                ),
                "not_an_object",
            )
            continue
        yield position, record


def dataframe_rows(frame: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """``(index value, record)`` pairs of a pandas DataFrame, with missing values as ``None``."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    values = frame.astype(object).where(frame.notna(), None)
    index = [_plain(value) for value in frame.index]
    return zip(index, values.to_dict("records"))


def _plain(value: Any) -> Any:
    """A numpy scalar as the equivalent Python value (so row ids serialise as JSON)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
