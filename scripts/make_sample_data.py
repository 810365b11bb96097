#!/usr/bin/env python
"""Write the synthetic AmazonTitles-schema sample that finetunekit ships (or a full-size file).

    python scripts/make_sample_data.py                      # the shipped sample (3,000 rows)
    python scripts/make_sample_data.py --rows 2248619 --out benchmarks/.cache/trn_synthetic.json.gz

The rows are a pure function of --seed, so rerunning gives the same file byte for byte.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from finetunekit.builtin.amazon import SAMPLE_DATA_FILE
from synthetic_catalog import FULL_CORPUS_ROWS, write_jsonl_gz

SAMPLE_ROWS = 3000
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "finetunekit" / "builtin" / "sample_data" / SAMPLE_DATA_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=SAMPLE_ROWS, help=f"rows to write (full corpus: {FULL_CORPUS_ROWS})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .json.gz path (default: the shipped sample)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes for large files")
    args = parser.parse_args(argv)
    shipped = args.out.resolve() == DEFAULT_OUT  # the committed sample: smallest file; else: fastest
    path = write_jsonl_gz(args.out, args.rows, args.seed, processes=args.processes, smallest=shipped, progress=True)
    print(f"wrote {args.rows} rows to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
