"""``Dataset``: a lazy plan (a source plus transforms) that streams rows once per pass.

Loading a file reads nothing yet; ``clean()``, ``head()`` and ``split()`` add streaming steps;
``sample()`` streams its parent once (reservoir sampling) and keeps only the sample. So
``Dataset.load("trn.json.gz").clean().sample(500, seed=42)`` reads a multi-GB file in one pass
with memory for 500 rows (plus the set of titles seen, to drop duplicates).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

import pluggy

from finetunekit.data import sampling
from finetunekit.data.cleaning import Cleaner, CleaningRules, CleanOptions
from finetunekit.data.jsonl import JsonLinesLoader
from finetunekit.data.loaders import resolve_loader
from finetunekit.data.reports import CleanReport, LoadReport
from finetunekit.data.rows import ROW_ID_FIELD
from finetunekit.data.sources import (
    source_path,
    Columns,
    dataframe_rows,
    file_rows,
    map_columns,
    normalize_columns,
    record_rows,
)

if TYPE_CHECKING:
    import pandas as pd

    from finetunekit.data.scan import ScanPlan

Row = dict[str, Any]


@dataclasses.dataclass
class PassReports:
    """The reports one pass over a plan fills: the source's and the last cleaning step's."""

    load: LoadReport | None = None
    clean: CleanReport | None = None


Stream = Callable[[PassReports], Iterator[Row]]


class Dataset:
    """Rows (dicts, each with a stable ``_row_id``) from a file, a DataFrame or a list.

    Every transform returns a new Dataset and leaves this one unchanged. Iterating streams
    the plan; ``records()`` and ``to_pandas()`` materialise it.
    """

    def __init__(
        self, stream: Stream, *, description: str, length: int | None = None, scan: ScanPlan | None = None
    ) -> None:
        """Low level: prefer :meth:`load`, :meth:`from_records` or :meth:`from_pandas`.

        ``scan``: the same plan for :func:`~finetunekit.data.scan.scan_sample`, which ``sample()``
        uses on big JSON Lines files (same rows, on every core).
        """
        self._stream = stream
        self._description = description
        self._length = length
        self._reports: PassReports | None = None
        self._scan = scan

    # ----------------------------------------------------------------- sources

    @classmethod
    def load(
        cls,
        source: str | os.PathLike[str] | pd.DataFrame,
        *,
        format: str | None = None,
        columns: Columns = None,
        limit: int | None = None,
        on_error: str = "raise",
        plugins: pluggy.PluginManager | None = None,
        progress: bool | None = None,
        loader_options: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """A lazy dataset over a file (JSON Lines, gzip or not; CSV; Parquet) or a DataFrame.

        ``format`` names a registered loader (default: chosen by the file's suffix);
        ``columns`` maps source fields to row fields (``{"name": "title"}``; a list keeps the
        names) and drops the rest; ``source`` may also name a file shipped inside an installed
        package as ``"package:PACKAGE/FILE"`` (e.g. a plugin's sample data); ``limit`` stops after that many rows; ``on_error="skip"``
        skips malformed records and counts them in :attr:`load_report` instead of raising a
        :class:`~finetunekit.errors.DataError`. ``progress``: a progress bar (default: on a
        terminal only). ``loader_options``: further keyword arguments for the loader (e.g. the
        ``datasets`` loader's ``split``). Nothing is read until the dataset is iterated.
        """
        mapping = normalize_columns(columns)
        if limit is not None:
            sampling.check_count(limit, "limit")
        LoadReport(on_error=on_error)  # validates on_error now, not at the first pass
        if not isinstance(source, (str, os.PathLike)):
            frame_rows = dataframe_rows(source)
            dataset = cls._in_memory(lambda report: frame_rows, mapping, on_error, "<DataFrame>", "dataframe")
            return dataset if limit is None else dataset.head(limit)
        path = source_path(source)
        loader = resolve_loader(path, format, plugins)

        def stream(reports: PassReports) -> Iterator[Row]:
            reports.load = LoadReport(source=str(path), format=loader.name, on_error=on_error)
            return file_rows(path, loader, mapping, reports.load, limit=limit, progress=progress,
                             options=loader_options)

        limited = "" if limit is None else f", limit={limit}"
        scan = None
        if limit is None and type(loader) is JsonLinesLoader:
            from finetunekit.data.scan import ScanPlan

            scan = ScanPlan(path, mapping, on_error, progress)
        return cls(stream, description=f"load({str(path)!r}{limited})", scan=scan)

    @classmethod
    def from_records(cls, records: Iterable[Any], *, columns: Columns = None, on_error: str = "raise") -> Dataset:
        """An in-memory dataset of mappings; ``_row_id`` is a record's own, else its position.

        A record that is not a mapping, or whose mapped field holds an array or object, raises a
        :class:`~finetunekit.errors.DataError` (``on_error="skip"``: skipped and counted in
        :attr:`load_report`)."""
        return cls._in_memory(lambda report: record_rows(records, report), normalize_columns(columns), on_error,
                              "<records>", "records")

    @classmethod
    def from_pandas(cls, frame: pd.DataFrame, *, columns: Columns = None, on_error: str = "raise") -> Dataset:
        """An in-memory dataset of a DataFrame's rows; ``_row_id`` is the ``_row_id`` column or the index."""
        frame_rows = dataframe_rows(frame)
        return cls._in_memory(lambda report: frame_rows, normalize_columns(columns), on_error, "<DataFrame>",
                              "dataframe")

    @classmethod
    def _in_memory(
        cls, records: Callable[[LoadReport], Iterable[Any]], columns: dict[str, str] | None, on_error: str,
        label: str, format: str,
    ) -> Dataset:
        report = LoadReport(source=label, format=format, on_error=on_error)
        rows = list(map_columns(records(report), columns, report, label))
        report.rows = len(rows)
        report.lines_read = len(rows) + report.skipped_total
        report.complete = True
        return cls._from_rows(rows, PassReports(load=report), description=f"{format}({len(rows)} rows)")

    @classmethod
    def _from_rows(cls, rows: list[Row], reports: PassReports, *, description: str) -> Dataset:
        def stream(pass_reports: PassReports) -> Iterator[Row]:
            pass_reports.load, pass_reports.clean = reports.load, reports.clean
            return (dict(row) for row in rows)

        return cls(stream, description=description, length=len(rows))

    # -------------------------------------------------------------- transforms

    def clean(
        self,
        min_content_length: int = 0,
        required: Sequence[str] | str = ("title", "content"),
        drop_duplicate_titles: bool = True,
        junk_contents: Iterable[Any] | None = (),
        *,
        rules: Sequence[str | CleaningRules] | str | CleaningRules = (),
        title_field: str = "title",
        content_field: str = "content",
        plugins: pluggy.PluginManager | None = None,
    ) -> Dataset:
        """Normalise text and drop bad rows; :attr:`clean_report` counts each rule's removals.

        Every string field is stripped, HTML-unescaped (``&#39;`` → ``'``) and has its
        whitespace collapsed (and what the ``rules``' remove patterns match cut out). Then rows
        are dropped, in this order: a ``required`` field missing or empty; content shorter than
        ``min_content_length``; content equal to one of ``junk_contents`` or the ``rules``'
        junk contents (strings, ignoring case, or compiled patterns, matched fully); a title
        seen before (ignoring case; the first is kept). Idempotent.

        ``rules``: :class:`~finetunekit.data.cleaning.CleaningRules` or the names of registered
        ones (``register_cleaning_rules``), by name.
        """
        options = CleanOptions.build(
            min_content_length=min_content_length,
            required=required,
            drop_duplicate_titles=drop_duplicate_titles,
            junk_contents=junk_contents,
            title_field=title_field,
            content_field=content_field,
            rules=resolve_cleaning_rules(rules, plugins),
        )

        def stream(reports: PassReports) -> Iterator[Row]:
            rows = self._stream(reports)
            reports.clean = CleanReport()
            return Cleaner(options, reports.clean).apply(rows)

        scan = None
        if self._scan is not None and self._scan.clean is None:
            scan = dataclasses.replace(self._scan, clean=options)
        return Dataset(stream, description=f"{self._description}.clean()", scan=scan)

    def map(self, function: Callable[[Row], Row], *, name: str = "map") -> Dataset:
        """Each row replaced by ``function(row)``, streamed; ``_row_id`` is kept unless the
        new row sets its own. ``function`` raises (e.g. a :class:`DataError`) on a bad row."""

        def stream(reports: PassReports) -> Iterator[Row]:
            for row in self._stream(reports):
                new = function(row)
                new.setdefault(ROW_ID_FIELD, row.get(ROW_ID_FIELD))
                yield new

        return Dataset(stream, description=f"{self._description}.{name}()", length=self._length)

    def head(self, n: int) -> Dataset:
        """The first ``n`` rows (reading stops there)."""
        sampling.check_count(n, "n")

        def stream(reports: PassReports) -> Iterator[Row]:
            rows = self._stream(reports)
            try:
                yield from (row for _, row in zip(range(n), rows))
            finally:
                close = getattr(rows, "close", None)
                if close is not None:
                    close()

        length = None if self._length is None else min(n, self._length)
        return Dataset(stream, description=f"{self._description}.head({n})", length=length)

    def sample(self, n: int, seed: int = 0) -> Dataset:
        """``min(n, len(self))`` rows drawn uniformly without replacement, in source order.

        Deterministic for a given ``seed``. Streams this dataset once (on first use) and keeps
        only the sample; later passes reuse it. Over a JSON Lines file of 32 MiB or more
        (optionally cleaned) on a machine with several CPUs, that pass runs on all of them
        (:mod:`finetunekit.data.scan`), with the same rows, reports and errors.
        """
        sampling.check_count(n, "n")
        cache: list[Dataset] = []

        def stream(reports: PassReports) -> Iterator[Row]:
            if not cache:
                scanned = self._scan_sample(n, seed)
                if scanned is None:
                    rows = sampling.reservoir_sample(self._stream(reports), n, seed)
                    snapshot = PassReports(load=reports.load, clean=reports.clean)
                else:
                    rows, snapshot = scanned
                cache.append(Dataset._from_rows(rows, snapshot, description="sample"))
            return cache[0]._stream(reports)

        return Dataset(stream, description=f"{self._description}.sample({n}, seed={seed})")

    def _scan_sample(self, n: int, seed: int) -> tuple[list[Row], PassReports] | None:
        """The sample drawn by the parallel scan, or ``None`` where the sequential pass is as fast."""
        if self._scan is None:
            return None
        from finetunekit.data import scan

        workers = scan.choose_workers(self._scan.path, self._scan)
        if workers is None:
            return None
        try:
            rows, load, clean = scan.scan_sample(self._scan, n, seed, workers=workers)
        except scan.SequentialPassNeeded:
            return None  # the sequential pass raises the file's error
        return rows, PassReports(load=load, clean=clean)

    def split(self, test_size: float | int, seed: int = 0) -> tuple[Dataset, Dataset]:
        """``(train, test)``: disjoint, together every row, each in source order.

        ``test_size`` is a fraction in (0, 1) (rounded to the nearest row count) or a count.
        The same dataset and seed always give the same split.
        """
        total = len(self)
        count = sampling.split_test_count(test_size, total)
        positions = sampling.split_test_positions(total, count, seed)

        def part(keep_test: bool, name: str) -> Dataset:
            def stream(reports: PassReports) -> Iterator[Row]:
                for position, row in enumerate(self._stream(reports)):
                    if (position in positions) is keep_test:
                        yield row

            return Dataset(
                stream,
                description=f"{self._description}.split({test_size!r}, seed={seed})[{name}]",
                length=count if keep_test else total - count,
            )

        return part(False, "train"), part(True, "test")

    # ------------------------------------------------------------- consumers

    def __iter__(self) -> Iterator[Row]:
        """Stream the rows (each a new dict with ``_row_id``)."""
        reports = PassReports()
        count = 0
        for row in self._stream(reports):
            count += 1
            yield row
        self._length = count
        self._reports = reports

    def __len__(self) -> int:
        """The number of rows (a counting pass the first time, for a lazy dataset)."""
        if self._length is None:
            self._run_pass()
        assert self._length is not None
        return self._length

    def records(self) -> list[Row]:
        """Every row, as a list of dicts."""
        return list(self)

    def to_pandas(self) -> pd.DataFrame:
        """Every row as a DataFrame (``_row_id`` is a column)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records())

    def fingerprint(self) -> str:
        """A SHA-256 of the rows in order (values and ``_row_id``): equal rows, equal print."""
        digest = hashlib.sha256()
        for row in self:
            digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()

    @property
    def load_report(self) -> LoadReport:
        """The source's report from the latest complete pass (runs one if none has run)."""
        report = self._last_reports().load
        assert report is not None
        return report

    @property
    def clean_report(self) -> CleanReport | None:
        """The last ``clean()`` step's report from the latest complete pass; ``None`` if no step cleans."""
        return self._last_reports().clean

    def _last_reports(self) -> PassReports:
        if self._reports is None:
            self._run_pass()
        assert self._reports is not None
        return self._reports

    def _run_pass(self) -> None:
        """Stream every row once, keeping nothing but the count and the reports."""
        for _ in self:
            pass

    def __repr__(self) -> str:
        size = "" if self._length is None else f", {self._length} rows"
        return f"Dataset({self._description}{size})"


__all__ = ["Dataset", "PassReports"]


def resolve_cleaning_rules(
    rules: Sequence[str | CleaningRules] | str | CleaningRules, plugins: pluggy.PluginManager | None = None
) -> tuple[CleaningRules, ...]:
    """``rules`` as CleaningRules objects, registered names looked up in ``plugins``."""
    if isinstance(rules, (str, CleaningRules)):
        rules = [rules]
    if not any(isinstance(rule, str) for rule in rules):
        return tuple(rules)
    from finetunekit.registry import registry_for

    registry = registry_for("register_cleaning_rules", plugins)
    return tuple(registry.get(rule) if isinstance(rule, str) else rule for rule in rules)
