#!/usr/bin/env python
"""Resident memory of a command over time: run it, sample its VmRSS every half second (Linux).

    python benchmarks/rss_timeline.py rss.log -- python examples/amazon_titles.py

Writes ``seconds MiB`` per line to the log (the command's output to ``LOG.out``) and prints the
peak, so a run's memory can be read against its stages' timings (the run's manifest.json).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def resident_mib(pid: int) -> int | None:
    """The process's resident set size in MiB, or ``None`` once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    log = Path(sys.argv[1])
    with open(f"{log}.out", "w") as output, open(log, "w") as samples:
        process = subprocess.Popen(sys.argv[3:], stdout=output, stderr=subprocess.STDOUT)
        started, peak = time.time(), 0
        while process.poll() is None:
            rss = resident_mib(process.pid)
            if rss is not None:
                peak = max(peak, rss)
                samples.write(f"{time.time() - started:.1f} {rss}\n")
                samples.flush()
            time.sleep(0.5)
    print(f"exit {process.returncode}, {time.time() - started:.0f} s, peak {peak} MiB (sampled every 0.5 s)")
    sys.exit(process.returncode)


if __name__ == "__main__":
    main()
