"""Peak memory of a short train + evaluate run with the local backend: before vs after the memory levers.

Each variant runs in a child process (peak RSS from ``os.wait4``): fine-tune the model for a
few steps on Amazon examples, then answer questions with the base and the fine-tuned model,
as the pipeline does. "before" turns the levers off (the model's own loss over the whole
batch's logits, a separate model per chat model); "after" is the defaults (chunked loss on the
label positions, one shared model for base and fine-tuned answers).

    python benchmarks/bench_memory.py --rows 16 --questions 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from child_run import child_or_options, run_child, run_variants  # noqa: E402
os.environ.setdefault("HF_HUB_OFFLINE", "1")

VARIANTS = {
    "before": {"trainer": {"chunked_loss": False}, "chat": {"share_model": False}},
    "after": {"trainer": {}, "chat": {}},
}


def child(opts: argparse.Namespace) -> None:
    """One variant: train, free the trainer, answer with base and fine-tuned; print timings as JSON."""
    import gc

    import finetunekit as ftk
    from local_sample import amazon_examples, load_rows, pick

    variant = VARIANTS[opts.child]
    rows = pick(load_rows(opts.data), opts.rows, opts.seed)
    examples = amazon_examples(rows)
    started = time.perf_counter()
    trainer = ftk.get_trainer(
        "local", model=opts.model, epochs=opts.epochs, batch_size=opts.batch_size, learning_rate=2e-3,
        seed=opts.seed, device="cpu", **variant["trainer"],
    )
    tuned = trainer.train(examples, run_dir=Path(opts.out) / "train")
    del trainer
    gc.collect()
    trained = time.perf_counter()
    common = {"device": "cpu", "max_new_tokens": opts.max_new_tokens, "progress": False, **variant["chat"]}
    models = {"base": ftk.get_chat_model("local", model=opts.model, **common),
              "fine-tuned": tuned.chat_model(**common)}
    questions = [example["messages"][:1] for example in examples[: opts.questions]]
    answers = {label: model.answer(questions) for label, model in models.items()}
    print(json.dumps({"train_s": trained - started, "answer_s": time.perf_counter() - trained,
                      "answers": answers}))


def run_variant(name: str, opts: argparse.Namespace, out: Path) -> dict:
    """Run one variant in a child process; its wall time, peak RSS and answers."""
    command = [sys.executable, __file__, "--child", name, "--out", str(out)] + [
        arg for key in ("model", "rows", "epochs", "batch_size", "questions", "max_new_tokens", "seed")
        for arg in (f"--{key.replace('_', '-')}", str(getattr(opts, key)))
    ] + (["--data", opts.data] if opts.data else [])
    result, peak_mib, seconds = run_child(command, name)
    return {"wall_s": round(seconds, 1), "peak_rss_mib": peak_mib,
            "train_s": round(result["train_s"], 1), "answer_s": round(result["answer_s"], 1), "answers": result["answers"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=None, help="JSONL(.gz) with title/content rows (default: sample data)")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    opts = child_or_options(parser, child, sorted(VARIANTS))
    if opts is None:
        return
    results = run_variants(VARIANTS, run_variant, opts)
    same = {label: results["before"]["answers"][label] == results["after"]["answers"][label] for label in ("base", "fine-tuned")}
    print(json.dumps({
        "rows": opts.rows, "epochs": opts.epochs, "batch_size": opts.batch_size, "questions": opts.questions,
        **{name: {k: v for k, v in r.items() if k != "answers"} for name, r in results.items()},
        "peak_rss_ratio": round(results["after"]["peak_rss_mib"] / results["before"]["peak_rss_mib"], 2),
        "answers_equal": same,
    }, indent=2))


if __name__ == "__main__":
    main()
