"""Keeping a CPU process's memory in check: freed memory handed back to the operating system
between the pipeline's heavy steps, and the caches of compiled kernels capped for training.

PyTorch on a CPU allocates tensors with the C library's ``malloc``; glibc keeps the memory of
freed tensors in its heaps for reuse, and a training step's tensors of ever-changing sizes leave
those heaps fragmented, so the process's resident memory grows well past what is alive (after one
epoch of the example's training, with the trainer deleted and collected, 2.3 GB stayed resident;
``malloc_trim`` brought it to 1.1 GB). :func:`release_freed_memory`
asks glibc to return its free pages (``malloc_trim``); elsewhere it does nothing. (Memory on a
GPU is PyTorch's own allocator's business, untouched by this.) Memory that stays *in use* is another
matter: oneDNN, which bfloat16 matmuls go through on CPUs with AVX512-BF16/AMX, and ideep, PyTorch's
layer over it, each keep a compiled kernel per shape, up to 1,024; :func:`cap_primitive_caches`
keeps fewer for training.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
from typing import Any

#: The caches of compiled kernels that PyTorch's bfloat16 matmuls fill on CPUs with AVX512-BF16/AMX,
#: one entry per shape: name -> (the environment variables that size it, the first set one
#: winning; the capacity the local trainer sets when none is). oneDNN keeps compiled primitives
#: (its default: 1,024); ideep, PyTorch's layer over oneDNN, keeps its own computations with their
#: buffers, per thread (default 1,024 on x86; on ARM its default is 1, so it is left alone there).
#: Training on pieces of ever-changing shapes kept filling both epoch after epoch: 64 each took the
#: example's two-epoch training peak to 0.90x (oneDNN's) and then 0.88x (ideep's), and what stayed
#: in use after training from 0.49 to 0.20 GB (docs/benchmarks.md).
PRIMITIVE_CACHES: dict[str, tuple[tuple[str, ...], int]] = {
    "oneDNN": (("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"), 64),
    **({} if platform.machine().lower() in ("aarch64", "arm64") else {"ideep": (("LRU_CACHE_CAPACITY",), 64)}),
}


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


def cap_primitive_caches() -> None:
    """Cap each of :data:`PRIMITIVE_CACHES` at its capacity there, unless the environment sizes it.

    oneDNN reads its variable once, at its first computation in the process, and ideep at its first
    in each thread, so this holds only when called before then."""
    for variables, capacity in PRIMITIVE_CACHES.values():
        if not any(os.environ.get(name) for name in variables):
            os.environ[variables[0]] = str(capacity)
