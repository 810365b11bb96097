"""Generation throughput of the local chat model: batched vs one prompt at a time.

The same questions, greedy, the same ``max_new_tokens``; tokens/s counts generated answer
tokens. One-at-a-time runs with ``batch_size=1``; batched with ``--batch-size``.

    python benchmarks/bench_generate.py --questions 16 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from local_sample import load_rows, pick  # noqa: E402


def timed_answers(model, questions: list[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    answers = model.answer(questions)
    return answers, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()

    import finetunekit as ftk
    from finetunekit.examples.prompts import PromptGenerator

    questions = PromptGenerator("amazon-product", seed=opts.seed).generate(pick(load_rows(opts.data), opts.questions, opts.seed))
    common = dict(model=opts.model, adapter=opts.adapter, max_new_tokens=opts.max_new_tokens, device="cpu", progress=False)
    single = ftk.get_chat_model("local", batch_size=1, **common)
    batched = ftk.get_chat_model("local", batch_size=opts.batch_size, **common)
    batched._loaded = single.loaded  # the same weights in memory, loaded once
    single.answer(questions[:1])  # warm-up
    tokenizer = single.loaded.tokenizer
    results = {}
    for label, model in (("one_at_a_time", single), ("batched", batched)):
        answers, seconds = timed_answers(model, questions)
        tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers)
        results[label] = {"seconds": round(seconds, 1), "answer_tokens": tokens, "tokens_per_second": round(tokens / seconds, 1)}
        print(label, results[label], flush=True)
    same = sum(a == b for a, b in zip(*(timed_answers(m, questions[:4])[0] for m in (single, batched))))
    out = {
        "model": opts.model, "adapter": opts.adapter, "questions": len(questions), "max_new_tokens": opts.max_new_tokens,
        "batch_size": opts.batch_size, **results,
        "speedup": round(results["batched"]["tokens_per_second"] / results["one_at_a_time"]["tokens_per_second"], 2),
        "identical_answers_of_first_4": same,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
