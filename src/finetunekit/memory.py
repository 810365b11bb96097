"""Keeping a CPU process's memory in check: freed memory handed back to the operating system
between the pipeline's heavy steps, and oneDNN's primitive cache capped for training.

PyTorch on a CPU allocates tensors with the C library's ``malloc``; glibc keeps the memory of
freed tensors in its heaps for reuse, and a training step's tensors of ever-changing sizes leave
those heaps fragmented, so the process's resident memory grows well past what is alive (after one
epoch of the example's training, with the trainer deleted and collected, 2.3 GB stayed resident;
``malloc_trim`` brought it to 1.1 GB). :func:`release_freed_memory`
asks glibc to return its free pages (``malloc_trim``); elsewhere it does nothing. (Memory on a
GPU is PyTorch's own allocator's business, untouched by this.) Memory that stays *in use* is another
matter: oneDNN, which bfloat16 matmuls go through on CPUs with AVX512-BF16/AMX, keeps a compiled
primitive per shape, up to 1,024; :func:`cap_onednn_primitive_cache` keeps fewer for training.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Any

#: Compiled primitives oneDNN keeps when the local trainer caps its cache (oneDNN's own default:
#: 1,024). Training on pieces of ever-changing shapes kept filling the default cache epoch after
#: epoch; 64 took the example's two-epoch training peak to 0.90x (docs/benchmarks.md).
DEFAULT_ONEDNN_PRIMITIVE_CACHE_CAPACITY = 64

#: The environment variables oneDNN reads its cache capacity from, the first set one winning.
ONEDNN_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


@functools.lru_cache(maxsize=None)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the C heap's free pages to the operating system; ``True`` if anything was returned."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


def collect_and_release() -> None:
    """Collect garbage (a dropped model may be held only by reference cycles), then
    :func:`release_freed_memory`."""
    import gc

    gc.collect()
    release_freed_memory()


def cap_onednn_primitive_cache() -> None:
    """Cap oneDNN's primitive cache (which PyTorch's bfloat16 matmuls go through on CPUs with
    AVX512-BF16/AMX) at :data:`DEFAULT_ONEDNN_PRIMITIVE_CACHE_CAPACITY` primitives, unless the
    environment chooses a size under either of :data:`ONEDNN_CACHE_VARIABLES`. oneDNN reads it once,
    at its first primitive in the process, so this holds only when called before then."""
    if not any(os.environ.get(name) for name in ONEDNN_CACHE_VARIABLES):
        os.environ[ONEDNN_CACHE_VARIABLES[0]] = str(DEFAULT_ONEDNN_PRIMITIVE_CACHE_CAPACITY)
