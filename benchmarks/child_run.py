"""Run a benchmark variant in a child process: the JSON it prints last, its peak RSS and wall time."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path


def run_child(command: list[str], label: str) -> tuple[dict, int, float]:
    """Run ``command``; its last stdout line parsed as JSON, peak RSS in MiB (``os.wait4``), seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"variant {label!r} failed (status {status})")
    return json.loads(output.strip().splitlines()[-1]), round(usage.ru_maxrss / 1024), time.perf_counter() - started


def run_variants(names, run_variant, opts) -> dict:
    """Each variant in turn, ``run_variant(name, opts, folder)`` in a fresh temporary folder,
    printing its figures (not its answers) as it ends."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, name in enumerate(names):
            results[name] = run_variant(name, opts, Path(tmp) / str(n))
            print(name, {k: v for k, v in results[name].items() if k != "answers"}, flush=True)
    return results


def child_or_options(parser: argparse.ArgumentParser, child, choices=None) -> argparse.Namespace | None:
    """Parse the command line with ``--child NAME --out DIR`` added: in a variant's child process run
    ``child(opts)`` and return ``None``; in the launcher return the options."""
    parser.add_argument("--child", choices=choices, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts)
        return None
    return opts
