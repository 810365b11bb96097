#!/usr/bin/env python
"""Load, clean and sample a full-size AmazonTitles file: finetunekit against two baselines.

    python benchmarks/bench_load.py                 # 2,248,619 rows (~1.8 GB JSON, gzip)
    python benchmarks/bench_load.py --rows 100000   # a quick run

Generates the synthetic corpus once (cached under benchmarks/.cache/), then measures, each in
its own process (wall time, and peak RSS from ``os.wait4``):

  (a) floor       ``gzip -dc FILE > /dev/null``
  (b) finetunekit ``Dataset.load(FILE).clean().sample(500, seed=42)`` over the whole file
  (c) pandas      ``pandas.read_json(FILE, lines=True, nrows=PREFIX)`` + the same cleaning +
                  ``.sample(500, random_state=42)``, on a prefix (the whole file needs ~13 GB),
                  compared per million rows.
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


def measure(command: list[str], stdout: int | None = subprocess.PIPE) -> dict:
    """Run ``command``; return wall seconds, peak RSS (MiB) and its JSON stdout if any.

    Linux counts the memory a child had before ``exec`` (this launcher's, ~10 MiB) in its peak.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout)
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed with status {status}")
    result = json.loads(output) if output.strip() else {}
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, **result}


# ------------------------------------------------------------------ children


def child_finetunekit(path: str) -> dict:
    from finetunekit.data import Dataset

    cleaned = Dataset.load(path, progress=False).clean()
    sample = cleaned.sample(SAMPLE, seed=SEED)
    rows = sample.records()
    report = sample.clean_report
    return {"rows": report.rows_in, "rows_kept": report.rows_out, "sampled": len(rows), "removed": report.removed}


def child_pandas(path: str, prefix: int) -> dict:
    """The notebook way: read_json(lines=True), then the same rules with pandas string methods."""
    import html

    import pandas as pd

    from finetunekit.builtin.amazon import AMAZON_TITLES_CLEANING

    DEFAULT_JUNK_CONTENTS = AMAZON_TITLES_CLEANING.junk_contents

    frame = pd.read_json(path, lines=True, nrows=prefix, dtype=False)
    rows = len(frame)
    for column in ("title", "content"):
        text = frame[column].fillna("").astype(str).map(html.unescape)
        frame[column] = text.str.replace(r"\s+", " ", regex=True).str.strip()
    frame = frame[(frame["title"] != "") & (frame["content"] != "")]
    junk_exact = {j.casefold() for j in DEFAULT_JUNK_CONTENTS if isinstance(j, str)}
    junk = frame["content"].str.casefold().isin(junk_exact)
    for pattern in (j for j in DEFAULT_JUNK_CONTENTS if not isinstance(j, str)):
        junk |= frame["content"].str.fullmatch(pattern)
    frame = frame[~junk]
    frame = frame[~frame["title"].str.casefold().duplicated()]
    sample = frame.sample(min(SAMPLE, len(frame)), random_state=SEED)
    return {"rows": rows, "rows_kept": len(frame), "sampled": len(sample)}


# -------------------------------------------------------------------- report


def table(results: dict[str, dict], rows: int, prefix: int) -> str:
    floor = results["floor"]
    per_million = lambda r, n: r["wall_s"] / n * 1e6  # noqa: E731
    lines = [
        "| run | rows read | wall s | s per M rows | × floor (per row) | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label, n in (
        ("floor", "(a) `gzip -dc FILE > /dev/null`", rows),
        ("finetunekit", "(b) finetunekit load → clean → sample(500)", rows),
        ("pandas", f"(c) pandas read_json + clean, first {prefix:,} rows", prefix),
    ):
        r = results[name]
        ratio = per_million(r, n) / per_million(floor, rows)
        lines.append(
            f"| {label} | {n:,} | {r['wall_s']:.1f} | {per_million(r, n):.1f} | {ratio:.2f} | {r['peak_rss_mib']:.0f} |"
        )
    pandas = results["pandas"]
    lines.append(
        f"\npandas extrapolated to {rows:,} rows: ~{per_million(pandas, prefix) * rows / 1e6:.0f} s and "
        f"~{pandas['peak_rss_mib'] * rows / prefix / 1024:.1f} GiB peak (linear in rows)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="rows in the generated corpus")
    parser.add_argument("--prefix", type=int, default=200_000, help="rows pandas reads (capped at --rows)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corpus")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, path, *rest = args.child
        result = child_finetunekit(path) if kind == "finetunekit" else child_pandas(path, int(rest[0]))
        print(json.dumps(result))
        return 0

    path = corpus(args.rows, args.seed)
    prefix = min(args.prefix, args.rows)
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    results = {
        "floor": measure(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL),
        "finetunekit": measure([*me, "finetunekit", str(path)]),
        "pandas": measure([*me, "pandas", str(path), str(prefix)]),
    }
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB gzip), {os.cpu_count()} CPUs")
    print(f"finetunekit: {results['finetunekit']}")
    print(f"pandas: {results['pandas']}")
    print(table(results, args.rows, prefix))
    floor, ours = results["floor"], results["finetunekit"]
    print(
        f"\ntargets: peak < 1024 MiB: {ours['peak_rss_mib']:.0f} MiB "
        f"({'met' if ours['peak_rss_mib'] < 1024 else 'MISSED'}); time ≤ 3× floor: "
        f"{ours['wall_s'] / floor['wall_s']:.2f}× ({'met' if ours['wall_s'] <= 3 * floor['wall_s'] else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
