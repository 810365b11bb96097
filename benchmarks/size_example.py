"""Sizing the end-to-end example: fine-tune on N products, then answer three eval sets with the
base and the fine-tuned model, timing every stage and scoring format and ROUGE-L.

    python benchmarks/size_example.py --products 32 --unseen 16 --epochs 8 --learning-rate 2e-3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from local_sample import amazon_examples, load_rows  # noqa: E402

PREFIX = "This is what I know about {title} from Amazon:"


def score(answers: list[str], rows: list[dict]) -> dict[str, float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    fmt = [a.startswith(PREFIX.format(title=r["title"])) for a, r in zip(answers, rows)]
    rouge = [scorer.score(r["content"], a)["rougeL"].fmeasure for a, r in zip(answers, rows)]
    return {"format": round(sum(fmt) / len(fmt), 3), "rouge_l": round(sum(rouge) / len(rouge), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help='rows file, "real" for the 1k real rows; default: shipped sample')
    p.add_argument("--products", type=int, default=32)
    p.add_argument("--unseen", type=int, default=16)
    p.add_argument("--max-content-chars", type=int, default=0, help="cut descriptions (0 = keep whole)")
    p.add_argument("--epochs", type=float, default=8)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--bf16", choices=("auto", "true", "false"), default="auto")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--gen-batch-size", type=int, default=16)
    p.add_argument("--run-dir", default="/tmp/local-eng/size-run")
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=0)
    o = p.parse_args()

    import finetunekit as ftk
    from finetunekit.examples.prompts import PromptGenerator

    rows = load_rows(o.data)
    if o.max_content_chars:
        rows = [{**r, "content": r["content"][: o.max_content_chars].rsplit(" ", 1)[0]} for r in rows]
    random.Random(o.seed).shuffle(rows)
    train, unseen = rows[: o.products], rows[o.products : o.products + o.unseen]
    examples = amazon_examples(train, seed=o.seed)
    timings = {}
    started = time.perf_counter()
    tuned = ftk.get_trainer(
        "local", epochs=o.epochs, learning_rate=o.learning_rate, lora_r=o.lora_r, lora_alpha=2 * o.lora_r,
        max_length=o.max_length, batch_size=o.batch_size, bf16={"true": True, "false": False}.get(o.bf16, "auto"), seed=o.seed,
    ).train(examples, run_dir=Path(o.run_dir))
    timings["train"] = round(time.perf_counter() - started, 1)
    sets = {
        "train-questions": ([e["messages"][0]["content"] for e in examples], train),
        "paraphrased": (PromptGenerator("amazon-product-paraphrased", seed=o.seed).generate(train), train),
        "unseen-products": (PromptGenerator("amazon-product", seed=o.seed).generate(unseen), unseen),
    }
    gen = dict(max_new_tokens=o.max_new_tokens, batch_size=o.gen_batch_size, progress=True)
    models = {"base": ftk.get_chat_model("local", **gen), "fine-tuned": tuned.chat_model(**gen)}
    scores, samples = {}, {}
    for label, model in models.items():
        for split, (questions, split_rows) in sets.items():
            t = time.perf_counter()
            answers = model.answer(questions)
            timings[f"{label}/{split}"] = round(time.perf_counter() - t, 1)
            scores[f"{label}/{split}"] = score(answers, split_rows)
            samples[f"{label}/{split}"] = answers[:2]
            print(label, split, scores[f"{label}/{split}"], timings[f"{label}/{split}"], flush=True)
    timings["total"] = round(time.perf_counter() - started, 1)
    result = {"options": vars(o), "details": {k: v for k, v in tuned.details.items() if k not in ("options",)},
              "timings_s": timings, "scores": scores, "samples": samples}
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if o.out:
        Path(o.out).write_text(text)


if __name__ == "__main__":
    main()
