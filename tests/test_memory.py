"""Freed memory goes back to the operating system when the pipeline asks (glibc only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetunekit.memory import _malloc_trim, release_freed_memory


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not Path("/proc/self/status").exists() or _malloc_trim() is None, reason="glibc on Linux only")
def test_freed_heap_pages_are_returned():
    # 4,000 blocks of 48 KiB (below glibc's mmap threshold, so they come from the heap); keeping
    # every 100th pins the heap's top, so glibc keeps the freed ones resident on its own
    blocks = [bytearray(48 * 1024) for _ in range(4000)]
    kept = blocks[::100]
    del blocks
    before = resident_mib()
    assert release_freed_memory()
    assert resident_mib() < before - 100  # ~185 MiB were freed; most of it is handed back
    assert len(kept) == 40

