"""CSV and Parquet loaders."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Collection, Iterator

from finetunekit.data.loaders import DatasetLoader
from finetunekit.data.reports import LoadReport
from finetunekit.data.streams import check_readable, open_binary, stream_error
from finetunekit.hookspecs import hookimpl
from finetunekit.errors import DataError, MissingDependencyError

#: ``surrogateescape`` turns each undecodable byte into one of these code points.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")

PARQUET_BATCH_ROWS = 8192


class CsvLoader(DatasetLoader):
    """Comma-separated values with a header row (UTF-8, optionally gzip-compressed).

    Every value is a string, as in the file. The row number is the line the record starts on
    (the header is line 1).
    """

    name = "csv"
    suffixes = (".csv", ".csv.gz")

    def iter_records(
        self, path: Path, *, report: LoadReport | None = None, **options: Any
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(line_number, {header: value})`` for each data row of ``path``."""
        report = report if report is not None else LoadReport(source=str(path), format=self.name)
        with open_binary(path) as (stream, _raw):
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = csv.reader(text)
            try:
                header = next(reader, None)
                if header is None:
                    report.lines_read = 0
                    return
                self._check_header(path, header)
                end = reader.line_num
                for values in reader:
                    start, end = end + 1, reader.line_num
                    record = self._record(path, start, header, values, report)
                    if record is not None:
                        yield start, record
            except csv.Error as exc:
                raise DataError(
                    f"malformed CSV ({exc}); expected RFC 4180 quoting", path=path, line=reader.line_num
                ) from exc
            except DataError:
                raise
            except Exception as exc:  # the gzip stream broke (truncated or corrupt data)
                raise stream_error(path, reader.line_num + 1, exc, compressed=stream is not _raw) from None
            report.lines_read = reader.line_num

    @staticmethod
    def _check_header(path: Path, header: list[str]) -> None:
        for position, name in enumerate(header, 1):
            if _ESCAPED_BYTE.search(name):
                raise DataError("undecodable byte in the header (expected UTF-8 text)", path=path, line=1, column=position)
        if len(set(header)) != len(header):
            duplicates = sorted({n for n in header if header.count(n) > 1})
            raise DataError(f"duplicate column names in the header: {duplicates}", path=path, line=1)

    @staticmethod
    def _record(
        path: Path, line: int, header: list[str], values: list[str], report: LoadReport
    ) -> dict[str, Any] | None:
        if not values:
            report.blank_lines += 1
            return None
        if len(values) != len(header):
            report.reject(
                DataError(f"expected {len(header)} fields as in the header, got {len(values)}", path=path, line=line),
                "wrong_field_count",
            )
            return None
        for name, value in zip(header, values):
            bad = _ESCAPED_BYTE.search(value)
            if bad:
                byte = ord(bad.group()) - 0xDC00
                report.reject(
                    DataError(f"undecodable byte 0x{byte:02x} (expected UTF-8 text)", path=path, line=line, field=name),
                    "undecodable",
                )
                return None
        return dict(zip(header, values))


class ParquetLoader(DatasetLoader):
    """Apache Parquet files, read in record batches (needs ``pyarrow``: extra ``parquet``).

    The row number is the 1-based row position in the file. Only the needed columns are read
    when the caller names them.
    """

    name = "parquet"
    suffixes = (".parquet", ".pq")

    def iter_records(
        self,
        path: Path,
        *,
        report: LoadReport | None = None,
        fields: Collection[str] | None = None,
        **options: Any,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(row_number, record)`` for each row of ``path``."""
        report = report if report is not None else LoadReport(source=str(path), format=self.name)
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingDependencyError(
                "pyarrow (needed to read Parquet files)", "pip install 'finetunekit[parquet]'"
            ) from exc
        check_readable(path)
        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid and friends
            raise DataError(f"not a readable Parquet file ({exc})", path=path) from exc
        columns = None
        if fields is not None:
            columns = [name for name in parquet.schema_arrow.names if name in set(fields)]
        row = 0
        with parquet:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
                for record in batch.to_pylist():
                    row += 1
                    yield row, record
        report.lines_read = row


@hookimpl
def register_dataset_loaders(register: Any) -> None:
    """Register CsvLoader, ParquetLoader."""
    register(CsvLoader())
    register(ParquetLoader())
