"""JSON Lines loader (``.jsonl``, ``.json``, ``.ndjson``, gzip-compressed or not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from finetunekit.data.loaders import DatasetLoader
from finetunekit.data.reports import LoadReport
from finetunekit.data.streams import json_loads, read_lines
from finetunekit.hookspecs import hookimpl
from finetunekit.errors import DataError

UTF8_BOM = b"\xef\xbb\xbf"


class JsonLinesLoader(DatasetLoader):
    """One JSON object per line (plain or gzip-compressed, e.g. ``trn.json.gz``).

    Uses ``orjson`` and ISA-L's gzip when installed (extra ``fast``). Blank lines are counted
    in the report, not treated as rows. Broken lines, non-object lines and undecodable bytes
    raise a :class:`DataError` naming the file, line and column (or are skipped and counted
    with ``on_error="skip"``).
    """

    name = "jsonl"
    suffixes = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz")

    def iter_records(
        self, path: Path, *, report: LoadReport | None = None, progress: bool | None = None, **options: Any
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(line_number, object)`` for each JSON object line of ``path``."""
        report = report if report is not None else LoadReport(source=str(path), format=self.name)
        counter = LineCounter(read_lines(path, progress=progress))
        yield from records_from_lines(path, counter, report)
        report.lines_read = counter.last


class LineCounter:
    """Passes ``(line_number, line)`` pairs through, remembering the last line number seen."""

    def __init__(self, lines: Iterable[tuple[int, bytes]]) -> None:
        self.lines = lines
        self.last = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for self.last, line in self.lines:
            yield self.last, line


def records_from_lines(
    path: Path, lines: Iterable[tuple[int, bytes]], report: LoadReport
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Parse numbered JSON Lines into ``(line_number, object)`` pairs (the loader's exact rules).

    Blank lines are counted in ``report``; broken lines, non-objects and undecodable bytes go
    to ``report.reject`` with the file, line and column. ``lines`` keep their line endings.
    """
    loads = json_loads()
    for line_no, line in lines:
        try:
            record = loads(line)
        except ValueError as exc:
            record = _recover(path, line_no, line, exc, report)
            if record is None:
                continue
        if type(record) is not dict:
            report.reject(
                DataError(
                    f"expected a JSON object per line, got {_json_type(record)}" + _array_hint(line_no, record),
                    path=path,
                    line=line_no,
                ),
                "not_an_object",
            )
            continue
        yield line_no, record


def _recover(path: Path, line_no: int, line: bytes, exc: ValueError, report: LoadReport) -> dict[str, Any] | None:
    """Explain a line that failed to parse; return the record if it was only a BOM."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as bad:
        report.reject(
            DataError(
                f"undecodable byte 0x{line[bad.start]:02x} (expected UTF-8 text)",
                path=path,
                line=line_no,
                column=bad.start + 1,
            ),
            "undecodable",
        )
        return None
    if not text.strip():
        report.blank_lines += 1
        return None
    if line_no == 1 and line.startswith(UTF8_BOM):
        try:
            return json_loads()(line[len(UTF8_BOM):])
        except ValueError as again:
            exc = again
    message = getattr(exc, "msg", str(exc))
    column = getattr(exc, "colno", None)
    hint = ""
    if line_no == 1 and text.lstrip(UTF8_BOM.decode()).strip()[:1] in ("[", "{"):
        hint = " (a JSON array or pretty-printed JSON is not JSON Lines: write one object per line)"
    report.reject(
        DataError(
            f"invalid JSON ({message}); expected one JSON object per line{hint}",
            path=path,
            line=line_no,
            column=column,
        ),
        "invalid_json",
    )
    return None


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _array_hint(line_no: int, value: Any) -> str:
    if line_no == 1 and isinstance(value, list):
        return " (a whole-file JSON array is not JSON Lines: write one object per line)"
    return ""


@hookimpl
def register_dataset_loaders(register: Any) -> None:
    """Register JsonLinesLoader."""
    register(JsonLinesLoader())
