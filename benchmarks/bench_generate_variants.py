#!/usr/bin/env python
"""Generation with a fine-tuned adapter: unmerged float32 (the baseline) vs the adapter merged
into the weights, in float32 and in bfloat16 — wall time and how many greedy answers agree.

    python benchmarks/bench_generate_variants.py --adapter runs/amazon-titles-local/train/adapter

Each variant answers the same questions (the shipped sample's products, training templates),
greedy, batched; variants are interleaved and the best of ``--repeats`` is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VARIANTS = {
    "unmerged-float32": {"merge_adapter": False, "dtype": "float32"},
    "merged-float32": {"merge_adapter": True, "dtype": "float32"},
    "merged-bfloat16": {"merge_adapter": True, "dtype": "bfloat16"},
}


def questions(n: int, seed: int) -> list[str]:
    """``n`` questions about products of the shipped sample."""
    import finetunekit as ftk
    from finetunekit.builtin.amazon import sample_data_path

    rows = ftk.Dataset.load(sample_data_path()).clean(min_content_length=40, rules=["amazon-titles"]).sample(n, seed=seed)
    return ftk.PromptGenerator("amazon-product-varied", seed=seed).generate(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()

    import finetunekit as ftk

    asked = questions(opts.questions, seed=7)
    models = {name: ftk.get_chat_model("local", model=opts.model, adapter=opts.adapter, device="cpu", progress=False,
                                       max_new_tokens=opts.max_new_tokens, batch_size=opts.batch_size, **options)
              for name, options in VARIANTS.items()}
    for model in models.values():
        model.answer(asked[:1])  # load and warm up
    best: dict[str, float] = {}
    answers: dict[str, list[str]] = {}
    for _ in range(opts.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            answers[name] = model.answer(asked)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    baseline = "unmerged-float32"
    result = {
        name: {"seconds": round(best[name], 1), "speedup": round(best[baseline] / best[name], 2),
               "answers_equal_to_baseline": sum(a == b for a, b in zip(answers[name], answers[baseline]))}
        for name in VARIANTS
    }
    print(json.dumps({"questions": len(asked), "max_new_tokens": opts.max_new_tokens, **result}, indent=1))


if __name__ == "__main__":
    main()
