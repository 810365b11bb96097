#!/usr/bin/env python
"""Evaluation's answering: the example's former setting (float32, 16 questions per batch, each
batch decoded by ``generate`` until its longest answer ends) vs bfloat16 (where the CPU computes
in it) at 54 per batch, with ``generate`` and with continuous batching (a row that ends makes
room for the next question; the example's setting) — wall time, greedy answers equal to the
baseline's, and ROUGE-L against the references per model.

    python benchmarks/bench_answering.py runs/amazon-titles-local

The questions, references and both models (base and fine-tuned) are a finished example run's
(``report/answers.csv``, ``train/fine_tuned_model.json``); ``--questions`` are taken evenly from
its three eval splits (all of them by default). Settings are interleaved per model, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: name -> chat-model options; the first is the baseline
SETTINGS = {
    "float32-batch16 (before)": {"dtype": "float32", "batch_size": 16, "continuous_batching": False},
    "bfloat16-batch54-generate": {"dtype": "auto", "batch_size": 54, "continuous_batching": False},
    "bfloat16-batch54-continuous (now)": {"dtype": "auto", "batch_size": 54, "continuous_batching": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished example run directory")
    parser.add_argument("--questions", type=int, default=0,
                        help="questions per model, taken evenly from the splits (0 = all, as the example: 108)")
    opts = parser.parse_args()

    import pandas as pd

    import finetunekit as ftk
    from finetunekit.evaluation.metrics import RougeL

    answers_csv = pd.read_csv(opts.run / "report" / "answers.csv")
    base_rows = answers_csv[answers_csv.model == "base"]
    per_split = max(1, opts.questions // base_rows.split.nunique())
    asked = base_rows.groupby("split", sort=False).head(per_split) if opts.questions else base_rows
    questions, references = asked.question.tolist(), asked.reference.tolist()
    tuned = json.loads((opts.run / "train" / "fine_tuned_model.json").read_text())
    models = {"base": {"model": tuned["base_model"], "max_new_tokens": 128},
              "fine-tuned": {**tuned["chat_options"], "max_new_tokens": 300}}
    rouge = RougeL()  # against the whole reference answer, as the summary table's rouge_l
    result = {"questions": len(questions)}
    for label, model_options in models.items():
        seconds, answers = {}, {}
        for name, setting in SETTINGS.items():
            chat = ftk.get_chat_model("local", device="cpu", progress=False, share_model=False,
                                      **model_options, **setting)
            chat.answer(questions[:1])  # load and warm up
            start = time.perf_counter()
            answers[name] = chat.answer(questions)
            seconds[name] = time.perf_counter() - start
        baseline = next(iter(SETTINGS))
        names = list(SETTINGS)
        result[label] = {
            name: {
                "seconds": round(seconds[name], 1),
                "speedup": round(seconds[baseline] / seconds[name], 2),
                "answers_equal_to_baseline": sum(a == b for a, b in zip(answers[name], answers[baseline])),
                # each setting against the one before it (continuous batching vs generate, same precision)
                "answers_equal_to_previous": sum(a == b for a, b in zip(answers[name], answers[names[max(0, n - 1)]])),
                "rouge_l": round(sum(rouge.score(a, r) for a, r in zip(answers[name], references)) / len(references), 4),
            }
            for n, name in enumerate(names)
        }
        print(json.dumps({label: result[label]}, indent=1), flush=True)
    total = {name: sum(result[m][name]["seconds"] for m in models) for name in SETTINGS}
    print(json.dumps({"both models, seconds": total,
                      "speedup": {name: round(total[baseline] / total[name], 2) for name in SETTINGS}}, indent=1))


if __name__ == "__main__":
    main()
