"""Benchmark: scoring speed of the built-in rouge_l against the rouge-score package.

Scores every real product description of the shared 1k-row sample against the description of
the next row (so the texts differ, as a model's answer and a reference do), with the same
tokeniser for both, and checks that the figures agree. Baseline: rouge-score's
``RougeScorer(["rougeL"], tokenizer=...)`` in the same run.

    PYTHONPATH=src python benchmarks/evaluation_metrics.py [path/to/amazon_titles.json.gz]
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

from finetunekit.evaluation.metrics import RougeL, TokenF1
from finetunekit.evaluation.text import Tokenizer

DEFAULT = Path("/work/shared/data/amazon_titles_real_1k.json.gz")


def timed(fn, pairs):
    start = time.perf_counter()
    scores = [fn(a, r) for a, r in pairs]
    return time.perf_counter() - start, scores


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        contents = [json.loads(line)["content"] or "" for line in handle]
    pairs = list(zip(contents, contents[1:] + contents[:1]))
    chars = sum(len(a) + len(r) for a, r in pairs)
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tokenizer())
    base_s, base = timed(lambda a, r: scorer.score(r, a)["rougeL"].fmeasure, pairs)
    ours_s, ours = timed(RougeL().score, pairs)
    f1_s, _ = timed(TokenF1().score, pairs)
    both_empty = [not Tokenizer().tokenize(a) and not Tokenizer().tokenize(r) for a, r in pairs]
    worst = max(abs(x - y) for x, y, e in zip(ours, base, both_empty) if not e)
    print(f"{len(pairs)} pairs, {chars / 1e6:.2f} M characters, from {path.name}")
    print(f"rouge-score rougeL (baseline): {base_s:.2f} s")
    print(f"finetunekit rouge_l:           {ours_s:.2f} s  ({base_s / ours_s:.1f}x faster)")
    print(f"finetunekit token_f1:          {f1_s:.2f} s")
    print(f"largest difference in F-measure: {worst:.2e}")


if __name__ == "__main__":
    main()
