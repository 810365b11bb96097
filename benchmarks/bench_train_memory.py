#!/usr/bin/env python
"""Peak memory and time of the example's training with trainer options changed, each variant in its own process.

    python benchmarks/bench_train_memory.py runs/amazon-titles-local --epochs 1 \\
        --variant example --variant checkpointing:gradient_checkpointing=true

``RUN`` is a finished example run (its ``examples/train.jsonl`` are trained on); a variant is
``NAME`` or ``NAME:OPTION=VALUE,...`` (values read as JSON, else as text) over the example's
trainer options (``examples/amazon_titles.toml``). Three more: ``loss_chunk=N``, the chunked
loss's positions per chunk; ``onednn_cache=N`` and ``ideep_cache=N``, the capacity of oneDNN's
primitive cache and of ideep's computation cache (default: the local trainer's caps on CPU; the
libraries' own defaults are 1,024, ideep's 1 on ARM). Reported per variant: peak RSS
(``os.wait4``), training seconds and the loss of every logged step, so that variants meant to
compute the same thing can be compared.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from child_run import child_or_options, run_child, run_variants  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:OPTION=VALUE,...`` → (name, options)."""
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


def child(opts: argparse.Namespace) -> None:
    """Train one variant here; print seconds and logged losses as JSON."""
    import finetunekit as ftk

    _, overrides = parse_variant(opts.child)
    if "loss_chunk" in overrides:  # not a trainer option: the chunked loss's positions per chunk
        from finetunekit.backends.local import loss

        loss.DEFAULT_CHUNK = int(overrides.pop("loss_chunk"))
    # the variables named here, not from finetunekit.memory, so that an older src/ (PYTHONPATH) runs too
    for option, variable in (("onednn_cache", "ONEDNN_PRIMITIVE_CACHE_CAPACITY"), ("ideep_cache", "LRU_CACHE_CAPACITY")):
        if option in overrides:  # read at the cache's first computation, which is still to come
            os.environ[variable] = str(int(overrides.pop(option)))
    config = tomllib.loads((ROOT / "examples" / "amazon_titles.toml").read_text())
    examples = [json.loads(line) for line in (opts.run / "examples" / "train.jsonl").read_text().splitlines()]
    options = {**config["trainer"]["options"], "epochs": opts.epochs, "seed": 42, "device": "cpu", **overrides}
    started = time.perf_counter()
    ftk.get_trainer("local", **options).train(examples, run_dir=Path(opts.out))
    seconds = time.perf_counter() - started
    with open(Path(opts.out) / "metrics.csv") as metrics:
        losses = [round(float(row["loss"]), 4) for row in csv.DictReader(metrics) if row["loss"]]
    print(json.dumps({"train_s": seconds, "losses": losses}))


def run_variant(text: str, opts: argparse.Namespace, out: Path) -> dict:
    command = [sys.executable, __file__, str(opts.run), "--child", text, "--out", str(out), "--epochs", str(opts.epochs)]
    result, peak_mib, _ = run_child(command, text)
    return {"peak_rss_mib": peak_mib, "train_s": round(result["train_s"], 1), "losses": result["losses"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished example run directory")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--variant", action="append", default=[], help="NAME or NAME:OPTION=VALUE,... (repeatable)")
    opts = child_or_options(parser, child)
    if opts is None:
        return
    results = run_variants(opts.variant or ["example"], run_variant, opts)
    print(json.dumps({"epochs": opts.epochs, **results}, indent=1))


if __name__ == "__main__":
    main()
