"""Memory-mapped weights that nothing reads for a while, dropped from the process's resident memory.

A model loaded from safetensors keeps its weights memory-mapped from the file: a page becomes
resident when first read and stays so, counted in the process's RSS, while the mapping lives.
:func:`drop_file_pages` tells the kernel (``madvise(MADV_DONTNEED)``) that the pages of some
tensors are not needed now; if they are read again, the kernel maps them back from its page cache
(or the file), with the same bytes, so nothing changes but the process's resident memory (the pages
stay in the page cache, which the kernel may reclaim). It drops only pages that are still the
file's: a page the process has written to (a private copy, e.g. a weight the optimizer updated),
anonymous memory (a tensor computed or converted in memory) and swapped-out pages are left alone,
since dropping those would lose data. Callers must not write the tensors meanwhile. Linux only
(``/proc/self/maps`` and ``/proc/self/pagemap``); elsewhere, or if those cannot be read, nothing
is dropped.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import functools
import mmap
import sys
from collections.abc import Iterable
from typing import Any

_PAGE = mmap.PAGESIZE
_PRESENT, _SWAPPED, _FILE_OR_SHARED = 1 << 63, 1 << 62, 1 << 61


def drop_file_pages(tensors: Iterable[Any]) -> int:
    """Drop the resident pages of ``tensors`` (CPU tensors) that are unchanged pages of a mapped file;
    return how many bytes were resident there and no longer are."""
    madvise = _madvise()
    if madvise is None:
        return 0
    tensors = list(tensors)  # alive until their pages are dropped
    ranges = [r for r in map(_inner_pages, tensors) if r is not None]
    if not ranges:
        return 0
    try:
        files = _file_mappings()
        dropped = 0
        with open("/proc/self/pagemap", "rb") as pagemap:
            for start, end in ranges:
                resident = _resident_file_pages(pagemap, start, end) if _within(files, start, end) else None
                if resident and madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), mmap.MADV_DONTNEED) == 0:
                    dropped += resident * _PAGE
        return dropped
    except OSError:  # e.g. too many open files: dropping is only ever a saving
        return 0


def _inner_pages(tensor: Any) -> tuple[int, int] | None:
    """The whole pages inside ``tensor``'s memory (its edges may share a page with another tensor)."""
    if tensor.device.type != "cpu" or not tensor.is_contiguous():
        return None
    first = tensor.data_ptr()
    start = -(-first // _PAGE) * _PAGE
    end = (first + tensor.numel() * tensor.element_size()) // _PAGE * _PAGE
    return (start, end) if end > start else None


def _file_mappings() -> list[tuple[int, int]]:
    """``(start, end)`` of this process's mappings of files, sorted."""
    mappings = []
    with open("/proc/self/maps", "rb") as maps:  # bytes: a mapped file's name may not be UTF-8
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or fields[4] == b"0" or fields[5].startswith(b"["):
                continue  # anonymous memory, the heap, the stack, ...
            low, high = fields[0].split(b"-")
            mappings.append((int(low, 16), int(high, 16)))
    return sorted(mappings)


def _within(mappings: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether ``[start, end)`` lies inside one of ``mappings``."""
    index = bisect.bisect_right(mappings, (start, float("inf"))) - 1
    return index >= 0 and mappings[index][0] <= start and end <= mappings[index][1]


def _resident_file_pages(pagemap: Any, start: int, end: int) -> int | None:
    """How many pages of ``[start, end)`` are resident, or ``None`` if one is a private (written)
    copy or swapped out."""
    import numpy as np

    pages = (end - start) // _PAGE
    pagemap.seek(start // _PAGE * 8)
    entries = np.frombuffer(pagemap.read(pages * 8), dtype=np.uint64)
    if len(entries) != pages:
        return None
    present = (entries & np.uint64(_PRESENT)) != 0
    private = present & ((entries & np.uint64(_FILE_OR_SHARED)) == 0)
    swapped = (entries & np.uint64(_SWAPPED)) != 0
    return None if private.any() or swapped.any() else int(present.sum())


@functools.cache
def _madvise() -> Any:
    """libc's ``madvise``, where pages can be told apart and dropped (Linux with a readable
    ``/proc/self/pagemap``), else ``None``."""
    if not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_DONTNEED"):
        return None
    try:
        with open("/proc/self/pagemap", "rb") as pagemap:
            pagemap.read(8)
        madvise = ctypes.CDLL(ctypes.util.find_library("c")).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes, madvise.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return madvise
