"""One training step (forward + backward, bf16 autocast, LoRA r=16) per batch layout: seconds, peak RSS, loss.

Each layout runs in its own child process (peak RSS from ``os.wait4``) on the same batch of
``--batch-size`` Amazon examples (seeded pick from the shipped sample), ``--steps`` times:

- ``padded_max``: padded to the longest example of the whole set, the model's own loss
  (what a plain ``transformers.Trainer`` with fixed-length padding does);
- ``padded``: padded to the batch's longest row, the model's own loss;
- ``chunked``: padded to the batch's longest row, the chunked loss on label positions;
- ``micro512``: padding-free pieces of at most 512 tokens (the CPU default), chunked loss;
- ``packed``: the batch packed into one row (per-example attention from position ids), chunked loss.

The loss is the same in every layout (up to rounding); the script prints it to show that.

    python benchmarks/bench_train_step.py --batch-size 8 --steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LAYOUTS = ("padded_max", "padded", "chunked", "micro512", "packed")


def child(opts: argparse.Namespace) -> None:
    """Run one layout; print seconds per step (best), the loss and the batch's shape as JSON."""
    import torch
    from peft import LoraConfig, get_peft_model

    from finetunekit.backends.local.batching import micro_batches
    from finetunekit.backends.local.collation import PaddingCollator, tokenize_examples
    from finetunekit.backends.local.loading import load_causal_lm, load_tokenizer
    from finetunekit.backends.local.loss import chunked_causal_lm_loss
    from finetunekit.backends.local.sources import resolve_model
    from local_sample import amazon_examples, load_rows, pick

    resolved = resolve_model(opts.model)
    tokenizer = load_tokenizer(resolved)
    items, report = tokenize_examples(tokenizer, amazon_examples(pick(load_rows(opts.data), opts.rows, opts.seed)), "auto", cap=2048)
    chosen = items[: opts.batch_size]
    layout = opts.child
    collate = PaddingCollator(tokenizer.pad_token_id, pad_to=report.max_length if layout == "padded_max" else None)
    batch = collate([{"input_ids": i.input_ids, "labels": i.labels} for i in chosen])
    count = torch.tensor(int((batch["labels"][:, 1:] != -100).sum()))
    budget = {"micro512": 512, "packed": None}.get(layout)
    parts = micro_batches(batch, budget, packed=layout == "packed") if layout in ("micro512", "packed") else [batch]
    torch.manual_seed(opts.seed)
    model = get_peft_model(load_causal_lm(resolved, device="cpu"),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    seconds, loss_value = [], 0.0
    for _ in range(opts.steps):
        started = time.perf_counter()
        loss_value = 0.0
        for part in parts:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                if layout.startswith("padded"):
                    loss = model(**part, num_items_in_batch=count).loss
                else:
                    loss, _ = chunked_causal_lm_loss(model, part, count)
            loss.backward()
            loss_value += loss.item()
        model.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": min(seconds), "loss": loss_value, "shape": list(batch["input_ids"].shape),
                      "pieces": len(parts), "tokens": int(batch["attention_mask"].sum())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=None, help="JSONL(.gz) with title/content rows (default: sample data)")
    parser.add_argument("--rows", type=int, default=48, help="examples tokenized (max_length auto = their longest)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument("--child", choices=LAYOUTS)
    opts = parser.parse_args()
    if opts.child:
        child(opts)
        return
    results = {}
    for layout in opts.layouts:
        command = [sys.executable, __file__, "--child", layout, "--model", opts.model, "--rows", str(opts.rows),
                   "--batch-size", str(opts.batch_size), "--steps", str(opts.steps), "--seed", str(opts.seed)]
        command += ["--data", opts.data] if opts.data else []
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            raise SystemExit(f"layout {layout} failed (status {status})")
        results[layout] = {**json.loads(output.strip().splitlines()[-1]), "peak_rss_mib": round(usage.ru_maxrss / 1024)}
        print(layout, results[layout], flush=True)
    if "padded_max" in results:
        for result in results.values():
            result["speedup_vs_padded_max"] = round(results["padded_max"]["seconds"] / result["seconds"], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
