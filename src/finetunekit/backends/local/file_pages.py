"""Memory-mapped weights that nothing reads for a while, dropped from the process's resident memory.

A model loaded from safetensors keeps its weights memory-mapped from the file: a page becomes
resident when first read and stays so, counted in the process's RSS, while the mapping lives.
:func:`drop_file_pages` tells the kernel (``madvise(MADV_DONTNEED)``) that the pages of some
tensors are not needed now; if they are read again, the kernel maps them back from its page cache
(or the file), with the same bytes, so nothing changes but resident memory. It drops only pages
that are still the file's: a page the process has written to (a private copy, e.g. a weight the
optimizer updated), anonymous memory (a tensor computed or converted in memory) and swapped-out
pages are left alone, since dropping those would lose data. Linux only (``/proc/self/maps`` and
``/proc/self/pagemap``); elsewhere nothing is dropped.
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

MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE
_PRESENT, _SWAPPED, _FILE_OR_SHARED = 1 << 63, 1 << 62, 1 << 61


def drop_file_pages(tensors: Iterable[Any]) -> int:
    """Drop the resident pages of ``tensors`` (CPU tensors) that are unchanged pages of a mapped file;
    return the bytes of the address ranges dropped (pages not resident count too)."""
    madvise = _madvise()
    if madvise is None:
        return 0
    ranges = [r for r in (_inner_pages(t) for t in tensors) if r is not None]
    if not ranges:
        return 0
    files = _file_mappings()
    dropped = 0
    with open("/proc/self/pagemap", "rb") as pagemap:
        for start, end in ranges:
            if (_within_file_mapping(files, start, end) and _unchanged_file_pages(pagemap, start, end)
                    and madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_DONTNEED) == 0):
                dropped += end - start
    return dropped


def _inner_pages(tensor: Any) -> tuple[int, int] | None:
    """The whole pages inside ``tensor``'s memory (its edges may share a page with another tensor)."""
    if tensor.device.type != "cpu" or not tensor.is_contiguous():
        return None
    first = tensor.data_ptr()
    start = -(-first // _PAGE) * _PAGE
    end = (first + tensor.numel() * tensor.element_size()) // _PAGE * _PAGE
    return (start, end) if end > start else None


def _file_mappings() -> list[tuple[int, int]]:
    """``(start, end)`` of this process's mappings of regular files, sorted."""
    mappings = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or fields[4] == "0" or fields[5].startswith("["):
                continue  # anonymous memory, the heap, the stack, ...
            low, high = fields[0].split("-")
            mappings.append((int(low, 16), int(high, 16)))
    return sorted(mappings)


def _within_file_mapping(mappings: list[tuple[int, int]], start: int, end: int) -> bool:
    index = bisect.bisect_right(mappings, (start, float("inf"))) - 1
    return index >= 0 and mappings[index][0] <= start and end <= mappings[index][1]


def _unchanged_file_pages(pagemap: Any, start: int, end: int) -> bool:
    """Whether no page in ``[start, end)`` is a private (written) copy or swapped out."""
    import numpy as np

    pages = (end - start) // _PAGE
    pagemap.seek(start // _PAGE * 8)
    entries = np.frombuffer(pagemap.read(pages * 8), dtype=np.uint64)
    if len(entries) != pages:
        return False
    present = (entries & np.uint64(_PRESENT)) != 0
    private = present & ((entries & np.uint64(_FILE_OR_SHARED)) == 0)
    swapped = (entries & np.uint64(_SWAPPED)) != 0
    return not (private.any() or swapped.any())


@functools.cache
def _madvise() -> Any:
    """libc's ``madvise`` on Linux with a readable ``/proc/self/pagemap``, else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/pagemap", "rb") as pagemap:
            pagemap.read(8)
        madvise = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes, madvise.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return madvise
