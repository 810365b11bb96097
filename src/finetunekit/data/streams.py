"""Opening source files for streaming: gzip detection, the fast libraries when installed, progress."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from finetunekit.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"

#: Lines between two updates of the progress bar (updating per line would cost more than parsing).
PROGRESS_EVERY = 1 << 15


def check_readable(path: Path) -> None:
    """Raise a ``FileNotFoundError``-compatible :class:`DataError` if ``path`` is not a file."""
    if not path.exists():
        raise MissingFileError("file not found (expected an existing data file)", path=path)
    if not path.is_file():
        raise MissingFileError("not a regular file (expected a data file, got a directory?)", path=path)


class MissingFileError(DataError, FileNotFoundError):
    """A source file does not exist (a :class:`DataError` and a :class:`FileNotFoundError`)."""


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes (whatever its name)."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


@functools.lru_cache(maxsize=1)
def json_loads() -> Callable[[bytes], Any]:
    """``orjson.loads`` when installed (extra ``fast``), else the standard library's."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the environment
        import json

        return json.loads
    return orjson.loads


@functools.lru_cache(maxsize=1)
def _gzip_reader() -> Callable[[IO[bytes]], IO[bytes]]:
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - depends on the environment
        import gzip

        return lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")
    return lambda raw: igzip.IGzipFile(fileobj=raw, mode="rb")


@contextlib.contextmanager
def open_binary(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """Open ``path`` for binary reading, decompressing gzip transparently.

    Yields ``(stream, raw)``: ``stream`` gives the decompressed bytes; ``raw.tell()`` is the
    position in the file on disk, for progress bars.
    """
    check_readable(path)
    raw = open(path, "rb")
    try:
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            stream = _gzip_reader()(raw)
            try:
                yield stream, raw
            finally:
                stream.close()
        else:
            raw.seek(0)
            yield raw, raw
    finally:
        raw.close()


def read_lines(path: Path, progress: bool | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line_bytes)`` of a (possibly gzip) text file, 1-based.

    Truncated or corrupt gzip data (or a read error) raises a :class:`DataError` naming the
    file and the line being read when it happened. ``progress`` shows a bar over the bytes on
    disk (``None``: only on a terminal).
    """
    with open_binary(path) as (stream, raw), progress_bar(path, progress) as bar:
        line_no = 0
        try:
            for line_no, line in enumerate(stream, 1):
                if not line_no % PROGRESS_EVERY:
                    bar(raw.tell())
                yield line_no, line
        except Exception as exc:  # EOFError, OSError, zlib.error, isal's IsalError: all mean bad bytes
            raise stream_error(path, line_no + 1, exc, compressed=stream is not raw) from None
        bar(raw.tell())


def stream_error(path: Path, line: int, exc: Exception, *, compressed: bool) -> DataError:
    """The :class:`DataError` for a read that failed at ``line`` (truncated or corrupt gzip data,
    or an I/O error): loaders turn whatever the decompressor raised into this."""
    what = "the file is truncated or not valid gzip" if compressed else "the file could not be read"
    expected = "expected a complete gzip stream" if compressed else "expected a readable file"
    return DataError(f"{what} at this line ({type(exc).__name__}: {exc}); {expected}", path=path, line=line)


@contextlib.contextmanager
def progress_bar(path: Path, enabled: bool | None) -> Iterator[Callable[[int], None]]:
    """A function to call with the position reached in ``path`` on disk, moving a progress bar
    (``enabled`` ``None``: shown on a terminal only; ``False``: never)."""
    if enabled is False:
        yield lambda position: None
        return
    from tqdm import tqdm

    disable = None if enabled is None else False  # None: tqdm shows the bar on a terminal only
    total = os.path.getsize(path)
    with tqdm(
        total=total, unit="B", unit_scale=True, desc=f"reading {path.name}", disable=disable, leave=False
    ) as bar:

        def update(position: int) -> None:
            bar.update(position - bar.n)

        yield update
