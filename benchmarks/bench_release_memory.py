#!/usr/bin/env python
"""Peak memory of the example's training and answering, with and without handing freed memory
back to the operating system (``finetunekit.memory.release_freed_memory``: glibc's
``malloc_trim`` after every training step and after answering).

Each variant runs in its own child process (peak RSS from ``os.wait4``): the example's trainer
options (``examples/amazon_titles.toml``) on a finished run's training examples for ``--epochs``,
then the fine-tuned model answers ``--questions`` of the run's eval questions with the example's
chat options, in the same process, as the pipeline does.

    python benchmarks/bench_release_memory.py runs/amazon-titles-local --epochs 1 --questions 108
"""

from __future__ import annotations

import argparse
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
VARIANTS = ("kept by malloc (before)", "released (now)")


def child(opts: argparse.Namespace) -> None:
    """Train and answer in this process; print seconds and answers as JSON."""
    import gc

    import pandas as pd

    import finetunekit as ftk
    import finetunekit.memory

    if opts.child == VARIANTS[0]:
        finetunekit.memory.release_freed_memory = lambda: False  # what the callbacks and the chat model call
    config = tomllib.loads((ROOT / "examples" / "amazon_titles.toml").read_text())
    examples = [json.loads(line) for line in (opts.run / "examples" / "train.jsonl").read_text().splitlines()]
    started = time.perf_counter()
    trainer = ftk.get_trainer("local", **{**config["trainer"]["options"], "epochs": opts.epochs, "seed": 42,
                                          "device": "cpu"})
    tuned = trainer.train(examples, run_dir=Path(opts.out) / "train")
    del trainer
    gc.collect()
    finetunekit.memory.release_freed_memory()
    trained = time.perf_counter()
    answers_csv = pd.read_csv(opts.run / "report" / "answers.csv")
    questions = answers_csv[answers_csv.model == "base"].question.tolist()[: opts.questions]
    chat = tuned.chat_model(**config["evaluation"]["chat_options"], device="cpu", progress=False)
    answers = chat.answer(questions)
    print(json.dumps({"train_s": trained - started, "answer_s": time.perf_counter() - trained, "answers": answers}))


def run_variant(name: str, opts: argparse.Namespace, out: Path) -> dict:
    """One variant in a child process: its seconds, peak RSS and answers."""
    command = [sys.executable, __file__, str(opts.run), "--child", name, "--out", str(out),
               "--epochs", str(opts.epochs), "--questions", str(opts.questions)]
    result, peak_mib, _ = run_child(command, name)
    return {"peak_rss_mib": peak_mib, "train_s": round(result["train_s"], 1),
            "answer_s": round(result["answer_s"], 1), "answers": result["answers"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished example run directory")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--questions", type=int, default=108)
    opts = child_or_options(parser, child, VARIANTS)
    if opts is None:
        return
    results = run_variants(VARIANTS, run_variant, opts)
    before, now = (results[name] for name in VARIANTS)
    print(json.dumps({
        "epochs": opts.epochs, "questions": len(now["answers"]),
        **{name: {k: v for k, v in r.items() if k != "answers"} for name, r in results.items()},
        "peak_ratio": round(now["peak_rss_mib"] / before["peak_rss_mib"], 2),
        "same_answers": before["answers"] == now["answers"],
    }, indent=1))


if __name__ == "__main__":
    main()
