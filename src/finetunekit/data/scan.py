"""``load → clean → sample`` over a big JSON Lines file, on every core, with the sequential pass's result.

A background thread decompresses the file (ISA-L releases the GIL) and cuts it into chunks of
whole lines. Worker processes parse and clean each chunk with the loader's and the cleaner's own
code (:func:`~finetunekit.data.jsonl.records_from_lines`, :func:`~finetunekit.data.sources.map_columns`,
:class:`~finetunekit.data.cleaning.Cleaner`) and send back only counts, the title keys of the
rows that pass every rule but ``duplicate_title``, and where those rows' lines start. The main
process takes the chunks in file order: it drops repeated titles, counts the rows into the
reservoir, and builds only the rows the reservoir draws, by parsing their lines again with the
same code. So the rows, their order and both reports are those of the sequential pass by
construction; a chunk whose records raise is parsed again in the main process, so the error is
the sequential pass's own (file, line, column); a file that fails to decompress is left to the
sequential pass, which raises its error.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import os
import queue
import threading
from array import array
from pathlib import Path
from typing import Any, Iterator

from finetunekit.data.cleaning import Cleaner, CleanOptions
from finetunekit.data.jsonl import records_from_lines
from finetunekit.data.reports import MAX_KEPT_MESSAGES, CleanReport, LoadReport
from finetunekit.data.sampling import Reservoir
from finetunekit.data.sources import map_columns
from finetunekit.data.streams import progress_bar, open_binary
from finetunekit.errors import DataError

#: Decompressed bytes per chunk (whole lines are added to reach the end of the last one).
CHUNK_BYTES = 8 << 20

#: Files smaller than this on disk are read by the sequential pass (starting workers costs more).
MIN_FILE_BYTES = 32 << 20

#: The most worker processes a scan starts.
MAX_WORKERS = 8

Row = dict[str, Any]


class SequentialPassNeeded(Exception):
    """The file could not be read to its end (e.g. truncated gzip): the sequential pass raises the error."""


@dataclasses.dataclass(frozen=True)
class ScanPlan:
    """What ``Dataset.load(path, columns=..., on_error=...)`` and an optional ``clean(...)`` ask for.

    ``compiled=False`` keeps every line on the Python path (the compiled line kernel is used only
    where it gives the same result; this switch is for measuring and testing it).
    """

    path: Path
    columns: dict[str, str] | None = None
    on_error: str = "raise"
    progress: bool | None = False
    clean: CleanOptions | None = None
    chunk_bytes: int = CHUNK_BYTES
    compiled: bool = True

    def load_report(self) -> LoadReport:
        """An empty report for this source, as the sequential pass starts it."""
        return LoadReport(source=str(self.path), format="jsonl", on_error=self.on_error)


@dataclasses.dataclass
class ChunkResult:
    """What one chunk's scan sends back: its reports and the rows left for the main process."""

    load: LoadReport
    clean: CleanReport
    keys: list[str | None]
    starts: array
    line_numbers: array
    lines: int = 0
    failed: bool = False
    first_removed: dict[str, int] = dataclasses.field(default_factory=dict)


class ChunkLines:
    """The numbered lines of a chunk (with their line endings, as a file gives them), remembering
    the number and start offset of the last line given."""

    def __init__(self, data: bytes, first_line: int) -> None:
        self.data = data
        self.line_no = first_line - 1
        self.start = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        start = 0
        for line in io.BytesIO(self.data):
            self.line_no += 1
            self.start = start
            yield self.line_no, line
            start += len(line)


def scan_chunk(plan: ScanPlan, data: bytes, first_line: int) -> ChunkResult:
    """Parse, map and clean one chunk whose first line is ``first_line``; keep the survivors' keys.

    The compiled line kernel takes the lines it can (when numba is installed and the plan allows
    it, see :mod:`~finetunekit.data.kernel_scan`); the Python path takes the rest. With
    ``on_error="raise"`` a bad record makes the result ``failed`` (the caller parses the chunk again
    with :func:`raise_chunk_error` to raise the error itself).
    """
    from finetunekit.data.kernel_scan import kernel_plan, scan_with_kernel

    settings = kernel_plan(plan)
    if settings is not None:
        return scan_with_kernel(plan, settings, data, first_line)
    result = scan_lines(plan, ChunkLines(data, first_line))
    result.lines = data.count(b"\n") + (bool(data) and not data.endswith(b"\n"))
    return result


class PickedLines:
    """Some lines of a chunk, by index (``starts``: every line's start offset), numbered and
    located as :class:`ChunkLines` gives them."""

    def __init__(self, data: bytes, first_line: int, starts: Any, picked: Any) -> None:
        self.data, self.first_line, self.starts, self.picked = data, first_line, starts, picked
        self.line_no = first_line - 1
        self.start = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        data = self.data
        for index in self.picked:
            self.line_no = self.first_line + index
            self.start = start = int(self.starts[index])
            end = data.find(b"\n", start)
            yield self.line_no, data[start:] if end < 0 else data[start : end + 1]


def scan_lines(plan: ScanPlan, lines: ChunkLines | PickedLines) -> ChunkResult:
    """The Python path over ``lines``: parse, map and clean them; keep the survivors' keys and where
    each rule first removed a row (``result.lines`` is left to the caller)."""
    load, clean = plan.load_report(), CleanReport()
    cleaner = Cleaner(plan.clean, clean) if plan.clean is not None else None
    result = ChunkResult(load, clean, [], array("q"), array("q"))
    rows = map_columns(records_from_lines(plan.path, lines, load), plan.columns, load, str(plan.path), fresh=True)
    keys, starts, numbers = result.keys.append, result.starts.append, result.line_numbers.append
    try:
        for row in rows:
            load.rows += 1
            key = None
            if cleaner is not None:
                cleaned = cleaner.normalize(row)
                rule = cleaner.rule_broken(cleaned)
                if rule is not None:
                    result.first_removed.setdefault(rule, lines.line_no)
                    clean.remove(rule)
                    continue
                key = cleaner.title_key(cleaned)
            keys(key)
            starts(lines.start)
            numbers(lines.line_no)
    except DataError:
        result.failed = True
    return result


def raise_chunk_error(plan: ScanPlan, data: bytes, first_line: int) -> None:
    """Parse a chunk whose scan failed again, here, so that its first bad record raises as it would in
    the sequential pass."""
    report = plan.load_report()
    rows = map_columns(records_from_lines(plan.path, ChunkLines(data, first_line), report), plan.columns, report, str(plan.path))
    for _ in rows:
        pass
    raise AssertionError("a chunk that failed in a worker parsed cleanly the second time")  # pragma: no cover


def scan_sample(plan: ScanPlan, n: int, seed: int, *, workers: int) -> tuple[list[Row], LoadReport, CleanReport | None]:
    """``Dataset.load(plan...)[.clean(...)].sample(n, seed)``: the sample and the pass's reports.

    ``workers``: processes that parse chunks besides this one (0: this one alone).
    Raises :class:`SequentialPassNeeded` if the file cannot be decompressed to its end.
    """
    load = plan.load_report()
    clean = CleanReport() if plan.clean is not None else None
    keeper = Cleaner(plan.clean, CleanReport()) if plan.clean is not None else None
    reservoir: Reservoir[Row] = Reservoir(n, seed)
    with _scanned_chunks(plan, workers) as scanned:
        for data, first_line, result in scanned:
            if result.failed:
                raise_chunk_error(plan, data, first_line)
            _merge_load(load, result)
            survivors = range(len(result.keys))
            if clean is not None and keeper is not None:
                survivors = keeper.first_seen(result.keys)
                _merge_clean(clean, result, survivors)
                clean.rows_out += len(survivors)
            first_index = reservoir.seen
            for slot, position in reservoir.draw(len(survivors)).items():
                i = survivors[position]
                row = _rebuild_row(plan, keeper, data, result.starts[i], result.line_numbers[i])
                reservoir.place(slot, first_index + position, row)
    load.complete = True
    if clean is not None:
        clean.complete = True
    return reservoir.items(), load, clean


def _rebuild_row(plan: ScanPlan, keeper: Cleaner | None, data: bytes, start: int, line_no: int) -> Row:
    """The row the sequential pass yields for the line at ``start`` (parsed, mapped, cleaned again)."""
    end = data.find(b"\n", start)
    line = data[start:] if end < 0 else data[start : end + 1]
    report = plan.load_report()
    (row,) = map_columns(records_from_lines(plan.path, [(line_no, line)], report), plan.columns, report, str(plan.path), fresh=True)
    return keeper.normalize(row) if keeper is not None else row


def _merge_load(total: LoadReport, part: ChunkResult) -> None:
    load = part.load
    total.lines_read += part.lines
    total.rows += load.rows
    total.blank_lines += load.blank_lines
    for reason, count in load.skipped.items():
        total.skipped[reason] = total.skipped.get(reason, 0) + count
    total.messages.extend(load.messages[: MAX_KEPT_MESSAGES - len(total.messages)])


def _merge_clean(total: CleanReport, part: ChunkResult, survivors: list[int]) -> None:
    """Add a chunk's cleaning to ``total``, its repeated titles (the rows not in ``survivors``)
    included; rules new to ``total`` in the order of their first removal, as the sequential pass
    meets them."""
    total.rows_in += part.clean.rows_in
    total.text_normalized += part.clean.text_normalized
    removed, first = dict(part.clean.removed), dict(part.first_removed)
    if len(survivors) < len(part.keys):
        removed["duplicate_title"] = len(part.keys) - len(survivors)
        repeated = next((i for i, kept in enumerate(survivors) if kept != i), len(survivors))
        first["duplicate_title"] = part.line_numbers[repeated]
    for rule in sorted(removed, key=lambda rule: first.get(rule, 0)):
        total.removed[rule] = total.removed.get(rule, 0) + removed[rule]


# ------------------------------------------------------------------ chunks in, results out, in order

Scanned = Iterator[tuple[bytes, int, ChunkResult]]


@contextlib.contextmanager
def _scanned_chunks(plan: ScanPlan, workers: int) -> Iterator[Scanned]:
    """``(chunk, first line, result)`` in file order, the chunks scanned inline or by ``workers`` processes.

    The workers are forked (so a caller's script needs no ``if __name__ == "__main__"`` guard), all
    of them before the reader thread starts.
    """
    from finetunekit.data.kernel_scan import kernel_plan

    kernel_plan(plan)  # compiles the kernel if the plan uses it, before the workers are forked: they inherit it
    if workers <= 0:
        with _chunks(plan) as chunks:
            yield ((data, first, scan_chunk(plan, data, first)) for data, first in chunks)
        return
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(plan,)
    ) as pool:
        pool.submit(int).result()  # forks every worker now, before the reader thread exists
        try:
            with _chunks(plan) as chunks:
                yield _in_order(plan, pool, chunks, window=2 * workers)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _in_order(plan: ScanPlan, pool: Any, chunks: Iterator[tuple[bytes, int]], window: int) -> Scanned:
    """Scan chunks in ``pool`` (at most ``window`` waiting there) and here when it is full; give back
    the results in file order."""
    pending: collections.deque[tuple[bytes, int, Any]] = collections.deque()
    waiting = 0
    for data, first in chunks:
        while pending and (len(pending) > 2 * window or _done(pending[0][2])):
            done_data, done_first, result = pending.popleft()
            if not isinstance(result, ChunkResult):
                waiting -= 1
                result = result.result()
            yield done_data, done_first, result
        if waiting < window:  # counted after taking the finished ones, so that no worker sits idle
            pending.append((data, first, pool.submit(_scan_in_worker, data, first)))
            waiting += 1
        else:
            pending.append((data, first, scan_chunk(plan, data, first)))
    while pending:
        data, first, result = pending.popleft()
        yield data, first, result if isinstance(result, ChunkResult) else result.result()


def _done(result: Any) -> bool:
    return isinstance(result, ChunkResult) or result.done()


_WORKER_PLAN: ScanPlan | None = None


def _init_worker(plan: ScanPlan) -> None:
    global _WORKER_PLAN
    _WORKER_PLAN = plan


def _scan_in_worker(data: bytes, first_line: int) -> ChunkResult:
    assert _WORKER_PLAN is not None
    return scan_chunk(_WORKER_PLAN, data, first_line)


_END = object()


@contextlib.contextmanager
def _chunks(plan: ScanPlan) -> Iterator[Iterator[tuple[bytes, int]]]:
    """``(chunk, first line number)`` of whole lines, decompressed ahead by a background thread."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader = threading.Thread(target=_read_chunks, args=(plan, ready, stop), name="finetunekit-scan-reader", daemon=True)
    reader.start()

    def chunks() -> Iterator[tuple[bytes, int]]:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    try:
        yield chunks()
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                ready.get_nowait()
        reader.join()


def _read_chunks(plan: ScanPlan, ready: queue.Queue[Any], stop: threading.Event) -> None:
    def put(item: Any) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(item, timeout=0.1)
                return True
        return False

    try:
        with open_binary(plan.path) as (stream, raw), progress_bar(plan.path, plan.progress) as bar:
            first_line = 1
            try:
                while data := _read_whole_lines(stream, plan.chunk_bytes):
                    if not put((data, first_line)):
                        return
                    first_line += data.count(b"\n") + (not data.endswith(b"\n"))
                    bar(raw.tell())
            except (EOFError, OSError) as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                put(SequentialPassNeeded(f"{plan.path}: {exc}"))
                return
        put(_END)
    except BaseException as exc:  # handed to the consumer, which raises it
        put(exc)


def _read_whole_lines(stream: io.BufferedIOBase | Any, size: int) -> bytes:
    data = stream.read(size)
    if data and not data.endswith(b"\n"):
        data += stream.readline()
    return data


def choose_workers(path: Path, plan: ScanPlan | None = None) -> int | None:
    """The worker processes worth starting to scan ``path`` here (0: this process alone), or
    ``None``: the sequential pass is as fast (a small file; or one CPU, or no fork, unless ``plan``
    can use the compiled line kernel, which beats the sequential pass even in one process)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    try:
        size = os.path.getsize(path)
    except OSError:
        return None  # the sequential pass raises the error
    if size < MIN_FILE_BYTES:
        return None
    if cpus < 2 or "fork" not in _start_methods():
        from finetunekit.data.kernel_scan import kernel_plan

        return 0 if plan is not None and kernel_plan(plan) is not None else None
    return min(cpus - 1, MAX_WORKERS)  # this process scans chunks too, when the workers are busy


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


__all__ = ["ScanPlan", "scan_sample", "scan_chunk", "choose_workers", "SequentialPassNeeded", "CHUNK_BYTES"]
