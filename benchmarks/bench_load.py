#!/usr/bin/env python
"""Load → clean → sample(500) on a full-size AmazonTitles file: before / after / ``gzip -dc``, in one run.

    python benchmarks/bench_load.py                      # 2,248,619 rows (~1.8 GB JSON, gzip), best of 3
    python benchmarks/bench_load.py --rows 200000 --repeats 1   # a quick run
    python benchmarks/bench_load.py --before-src /tmp/before/src  # "before" from another checkout's src/

Generates the synthetic corpus once (cached under benchmarks/.cache/, or give --corpus FILE), then
runs, in rounds (each round runs every command once, one after the other, so that a busy machine
slows all of them alike), each command in its own process:

  floor       ``gzip -dc FILE > /dev/null``
  sequential  ``Dataset.load(FILE).clean().sample(500, seed=42)`` read by the sequential pass
              (``--amazon-rules``: ``clean(rules=[AMAZON_TITLES_CLEANING])``, as the example cleans)
              (today's loader; from --before-src if given, else this tree with the parallel scan off)
  scan-python the same call through the parallel scan (finetunekit.data.scan) with every line on
              the Python path: the loader before the compiled line kernel
  parallel    the same call as a user makes it: the parallel scan with the compiled line kernel
              (finetunekit.data.line_kernel, numba) taking the lines it can
  pandas      (--pandas) ``pandas.read_json(FILE, lines=True, nrows=PREFIX)`` + the same cleaning,
              on a prefix (the whole file needs ~13 GB), compared per row

Reported: the best wall time of each over the rounds and its ratio to the floor's best; CPU
seconds (user + system, workers included) and their ratio, which a machine busy with other jobs
distorts less than wall time; peak RSS (the process, and for the parallel scan also its largest
worker × the number of workers: an upper bound of the sum, since forked workers share their
parent's pages). The children check that the parallel scan returns the same sample and reports
as the sequential pass.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
FULL_ROWS = 2_248_619
SAMPLE, SEED = 500, 42


def corpus(rows: int, seed: int) -> Path:
    """The cached synthetic corpus of ``rows`` rows, generated on first use (in a subprocess,
    so that this launcher stays small: a child's peak RSS includes its parent's at fork)."""
    path = CACHE / f"trn_synthetic_{rows}_seed{seed}.json.gz"
    if not path.exists():
        print(f"generating {path} (once) ...", file=sys.stderr)
        script = HERE.parent / "scripts" / "make_sample_data.py"
        subprocess.run([sys.executable, str(script), "--rows", str(rows), "--seed", str(seed), "--out", str(path)], check=True)
    return path


def measure(command: list[str], stdout: int | None = subprocess.PIPE, env: dict[str, str] | None = None) -> dict:
    """Run ``command``; return wall seconds, peak RSS (MiB) and its JSON stdout if any.

    Linux counts the memory a child had before ``exec`` (this launcher's, ~10 MiB) in its peak.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, env=env)
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed with status {status}")
    result = json.loads(output) if output.strip() else {}
    cpu = usage.ru_utime + usage.ru_stime  # the child's and its reaped children's (workers')
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": usage.ru_maxrss / 1024, **result}


# ------------------------------------------------------------------ children


def child_finetunekit(path: str, parallel: bool, kernel: bool = True, amazon_rules: bool = False) -> dict:
    import resource

    from finetunekit.data import Dataset

    if not kernel:
        from finetunekit.data import kernel_scan

        kernel_scan.kernel_plan = lambda plan: None  # every line on the Python path

    if not parallel:
        try:
            from finetunekit.data import scan
        except ImportError:  # --before-src: a tree without the parallel scan
            pass
        else:
            scan.MIN_FILE_BYTES = float("inf")  # the sequential pass, as before the scan existed
    if amazon_rules:
        from finetunekit.builtin.amazon import AMAZON_TITLES_CLEANING

        cleaned = Dataset.load(path, progress=False).clean(rules=[AMAZON_TITLES_CLEANING])
    else:
        cleaned = Dataset.load(path, progress=False).clean()
    sample = cleaned.sample(SAMPLE, seed=SEED)
    rows = sample.records()
    report, load = sample.clean_report, sample.load_report
    digest = __import__("hashlib").sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rows": report.rows_in,
        "rows_kept": report.rows_out,
        "sampled": len(rows),
        "removed": dict(sorted(report.removed.items())),
        "text_normalized": report.text_normalized,
        "lines_read": load.lines_read,
        "sample_sha256": digest,
        "own_peak_rss_mib": own.ru_maxrss / 1024,
        "worker_peak_rss_mib": workers.ru_maxrss / 1024,
        "own_cpu_s": own.ru_utime + own.ru_stime,
        "workers_cpu_s": workers.ru_utime + workers.ru_stime,
    }


def child_pandas(path: str, prefix: int) -> dict:
    """The notebook way: read_json(lines=True), then the same rules with pandas string methods."""
    import html

    import pandas as pd

    frame = pd.read_json(path, lines=True, nrows=prefix, dtype=False)
    rows = len(frame)
    for column in ("title", "content"):
        text = frame[column].fillna("").astype(str).map(html.unescape)
        frame[column] = text.str.replace(r"\s+", " ", regex=True).str.strip()
    frame = frame[(frame["title"] != "") & (frame["content"] != "")]
    frame = frame[~frame["title"].str.casefold().duplicated()]
    sample = frame.sample(min(SAMPLE, len(frame)), random_state=SEED)
    return {"rows": rows, "rows_kept": len(frame), "sampled": len(sample)}


# -------------------------------------------------------------------- report


def table(best: dict[str, dict], rows: int, prefix: int) -> str:
    floor, floor_cpu = best["floor"]["wall_s"], best["floor"]["cpu_s"]
    lines = [
        "| run | rows read | best wall s | × `gzip -dc` | CPU s (all processes) | × `gzip -dc` CPU | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {
        "floor": "`gzip -dc FILE > /dev/null`",
        "sequential": "sequential pass (small files, one CPU)",
        "scan-python": "before: parallel scan, every line on the Python path",
        "parallel": "after: parallel scan with the compiled line kernel",
        "pandas": f"pandas read_json + clean, first {prefix:,} rows (per row)",
    }
    for name, label in labels.items():
        if name not in best:
            continue
        r = best[name]
        n = prefix if name == "pandas" else rows
        ratio = (r["wall_s"] / n) / (floor / rows)
        cpu_ratio = (r["cpu_s"] / n) / (floor_cpu / rows)
        rss = f"{r.get('own_peak_rss_mib', r['peak_rss_mib']):.0f}"
        if name in ("parallel", "scan-python"):
            workers = r.get("workers", 0)
            rss += f" + {workers} × {r['worker_peak_rss_mib']:.0f} (workers)"
        lines.append(
            f"| {label} | {n:,} | {r['wall_s']:.1f} | {ratio:.2f} | {r['cpu_s']:.1f} | {cpu_ratio:.2f} | {rss} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="rows in the generated corpus")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corpus")
    parser.add_argument("--corpus", type=Path, help="use this .json.gz instead of generating one")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (best of)")
    parser.add_argument("--before-src", type=Path, help="run 'sequential' from this src/ directory (e.g. a checkout of main)")
    parser.add_argument("--pandas", action="store_true", help="also measure pandas on a prefix")
    parser.add_argument("--amazon-rules", action="store_true", help="clean(rules=[AMAZON_TITLES_CLEANING]) as the example does")
    parser.add_argument("--prefix", type=int, default=200_000, help="rows pandas reads (capped at --rows)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, path, *rest = args.child
        if kind == "pandas":
            result = child_pandas(path, int(rest[0]))
        else:
            result = child_finetunekit(path, kind != "sequential", kind != "scan-python", amazon_rules=rest == ["amazon"])
        print(json.dumps(result))
        return 0

    path = args.corpus or corpus(args.rows, args.seed)
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    before_env = None
    if args.before_src:
        before_env = {**os.environ, "PYTHONPATH": f"{args.before_src.resolve()}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    from finetunekit.data import scan

    workers = scan.choose_workers(path) or 0
    rules = ["amazon"] if args.amazon_rules else []
    commands = {
        "floor": lambda: measure(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL),
        "sequential": lambda: measure([*me, "sequential", str(path), *rules], env=before_env),
        "scan-python": lambda: {**measure([*me, "scan-python", str(path), *rules]), "workers": workers},
        "parallel": lambda: {**measure([*me, "parallel", str(path), *rules]), "workers": workers},
    }
    rounds: list[dict[str, dict]] = []
    for round_no in range(args.repeats):
        results = {name: run() for name, run in commands.items()}
        rounds.append(results)
        print(f"round {round_no + 1}: " + ", ".join(f"{k} {v['wall_s']:.1f} s" for k, v in results.items()), file=sys.stderr)
    best = {name: min((r[name] for r in rounds), key=lambda r: r["wall_s"]) for name in commands}
    rows = best["sequential"]["lines_read"]
    prefix = min(args.prefix, rows)
    if args.pandas:
        best["pandas"] = measure([*me, "pandas", str(path), str(prefix)])
    same = all(
        r[name][key] == r["sequential"][key]
        for r in rounds
        for name in ("scan-python", "parallel")
        for key in ("rows", "rows_kept", "removed", "text_normalized", "lines_read", "sample_sha256")
    )
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB gzip, {rows:,} lines), {os.cpu_count()} CPUs, "
          f"{workers} workers, best of {args.repeats}")
    print(f"sequential: {best['sequential']}")
    print(f"scan-python: {best['scan-python']}")
    print(f"parallel: {best['parallel']}")
    print(f"same sample and clean report in every round: {same}")
    print("per round (× gzip -dc): " + "; ".join(
        f"sequential {r['sequential']['wall_s'] / r['floor']['wall_s']:.2f}, scan-python "
        f"{r['scan-python']['wall_s'] / r['floor']['wall_s']:.2f}, parallel {r['parallel']['wall_s'] / r['floor']['wall_s']:.2f}"
        for r in rounds
    ))
    print(table(best, rows, prefix))
    before = best["scan-python"]
    print(f"compiled line kernel vs the Python path, same scan: wall {before['wall_s'] / best['parallel']['wall_s']:.2f}× "
          f"faster, CPU {before['cpu_s'] / best['parallel']['cpu_s']:.2f}× less")
    ours = best["parallel"]
    total_rss = ours["own_peak_rss_mib"] + workers * ours["worker_peak_rss_mib"]
    cores = (workers or 0) + 1
    print(
        f"CPU: gzip -dc {best['floor']['cpu_s']:.1f} s; sequential {best['sequential']['cpu_s']:.1f} s; parallel "
        f"{ours['cpu_s']:.1f} s (main process {ours['own_cpu_s']:.1f} s incl. its reader thread, workers "
        f"{ours['workers_cpu_s']:.1f} s); parallel CPU / {cores} cores = {ours['cpu_s'] / cores:.1f} s "
        f"= {ours['cpu_s'] / cores / best['floor']['cpu_s']:.2f}× gzip -dc's CPU (the wall time an idle "
        f"{cores}-core machine would allow at best)"
    )
    ratio = ours["wall_s"] / best["floor"]["wall_s"]
    print(
        f"\ntargets: time ≤ 1.0× gzip -dc: {ratio:.2f}× ({'met' if ratio <= 1.0 else 'MISSED'}); "
        f"peak < 1024 MiB (process + workers, upper bound): {total_rss:.0f} MiB ({'met' if total_rss < 1024 else 'MISSED'}); "
        f"same rows as the sequential pass: {'yes' if same else 'NO'}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
