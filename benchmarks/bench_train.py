"""Training throughput: the local trainer vs a plain padded ``transformers.Trainer`` baseline.

Both train the same model with the same LoRA settings on the same tokenized Amazon examples
(labels only on the answers) for the same number of steps. The baseline pads every batch to
``max_length`` and samples at random, and computes the model's own loss over every position's
logits; the local trainer groups examples of similar length, pads each batch to its longest
example and (by default) computes the loss chunk by chunk on the label positions only. Each
``--variants`` entry is the local trainer with other options (``plain``: the model's own loss;
``micro``: padding-free micro-batches of one example; ``packed``: the batch packed into one row).
Runs are interleaved (baseline, then each variant, repeated), so machine noise hits all alike.
Tokens/s counts real (non-padding) tokens.

    python benchmarks/bench_train.py --rows 48 --max-length auto --bf16 --repeats 2 --variants local plain

``--trained-layers N`` trains every weight of the top N decoder layers instead of LoRA, in both
(the example's setting; the local trainer then caches the frozen layers' output from the second
epoch). The example's settings, 48 products x 4 questions, 4 epochs:

    python benchmarks/bench_train.py --rows 48 --questions 4 --templates amazon-product-varied
        --epochs 4 --bf16 --trained-layers 10 --learning-rate 1e-3 --variants example   (one line)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from local_sample import amazon_examples, load_rows, pick  # noqa: E402


def baseline_seconds(resolved: str, items, opts, out: Path) -> tuple[float, float]:
    """Seconds for ``transformers.Trainer`` with fixed-length padding (to max_length) and a random
    sampler, and its training loss."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, set_seed

    from finetunekit.backends.local.loading import load_causal_lm, load_tokenizer
    from finetunekit.backends.local.collation import ChatDataset, PaddingCollator

    from finetunekit.backends.local.freezing import freeze_below_top_layers

    set_seed(opts.seed)
    tokenizer = load_tokenizer(resolved)
    model = load_causal_lm(resolved, device="cpu")
    if opts.trained_layers:
        freeze_below_top_layers(model, opts.trained_layers)
    else:
        model = get_peft_model(model, LoraConfig(r=opts.lora_r, lora_alpha=2 * opts.lora_r, lora_dropout=0.0,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=opts.batch_size, num_train_epochs=opts.epochs,
        learning_rate=opts.learning_rate, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
        remove_unused_columns=False, seed=opts.seed, bf16=opts.bf16,
        **({"warmup_steps": 0.05, "train_sampling_strategy": "group_by_length"} if opts.same_order else {}),
    )
    trainer = Trainer(model=model, args=args, train_dataset=ChatDataset(items),
                      data_collator=PaddingCollator(tokenizer.pad_token_id, pad_to=max(len(i.input_ids) for i in items)))
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started, epoch_losses(trainer.state.log_history)


def epoch_losses(history) -> list[float]:
    """The mean logged training loss of each epoch (the loss curve, coarsely)."""
    per_epoch: dict[int, list[float]] = {}
    for entry in history:
        if "loss" in entry and "epoch" in entry:
            per_epoch.setdefault(max(0, math.ceil(float(entry["epoch"])) - 1), []).append(float(entry["loss"]))
    return [round(sum(v) / len(v), 4) for _, v in sorted(per_epoch.items())]


#: The local trainer's options per variant (the rest as the baseline's).
VARIANTS = {
    "local": {},
    "plain": {"chunked_loss": False},
    "micro": {"micro_batch_tokens": 1},
    "packed": {"packing": True},
    "example": {"micro_batch_tokens": 1024},  # the example's pieces (with --trained-layers: its whole setting)
}


def ours_seconds(examples, opts, out: Path, variant: str) -> tuple[float, float]:
    """Seconds of ``LocalTrainer``'s training loop (checkpoint saving included) and its final loss."""
    import finetunekit as ftk

    tuning = ({"full_finetune": True, "trained_layers": opts.trained_layers} if opts.trained_layers
              else {"lora_r": opts.lora_r, "lora_alpha": 2 * opts.lora_r})
    trainer = ftk.get_trainer(
        "local", model=opts.model, epochs=opts.epochs, batch_size=opts.batch_size, max_length=opts.max_length,
        learning_rate=opts.learning_rate, device="cpu", bf16=opts.bf16, seed=opts.seed, logging_steps=1,
        **tuning, **VARIANTS[variant],
    )
    details = trainer.train(examples, run_dir=out).details
    with open(out / "metrics.csv", newline="") as handle:
        history = [row for row in csv.DictReader(handle) if row["loss"]]
    return details["train_seconds"], epoch_losses(history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=None, help="JSONL(.gz) with title/content rows (default: sample data)")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=lambda v: v if v == "auto" else int(v), default="auto",
                        help="token limit; auto (the trainer's default) = the longest example")
    parser.add_argument("--questions", type=int, default=1, help="questions per row (examples per product)")
    parser.add_argument("--templates", default="amazon-product", help="question templates (the example: amazon-product-varied)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--trained-layers", type=int, default=0, help="train every weight of the top N layers, not LoRA")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--same-order", action="store_true",
                        help="the baseline takes the local trainer's warmup (5%%) and length-grouped batch order, "
                        "so both see the same batches and their loss curves compare (it still pads to max_length)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["local"])
    opts = parser.parse_args()

    import torch

    from finetunekit.backends.local.loading import load_tokenizer
    from finetunekit.backends.local.sources import resolve_model
    from finetunekit.backends.local.collation import tokenize_examples

    resolved = resolve_model(opts.model)
    rows = pick(load_rows(opts.data), opts.rows, opts.seed)
    examples = amazon_examples(rows * opts.questions, templates=opts.templates)
    items, report = tokenize_examples(load_tokenizer(resolved), examples, opts.max_length, cap=2048)
    tokens = report.tokens * opts.epochs
    print(f"{len(items)} examples, {report.tokens} tokens (mean {report.tokens / len(items):.0f}, "
          f"{report.truncated} truncated at {report.max_length}); torch threads {torch.get_num_threads()}", flush=True)
    runs: dict[str, list[float]] = {"baseline_padded": [], **{v: [] for v in opts.variants}}
    losses: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(opts.repeats):  # interleaved, so machine noise hits all alike
            seconds, losses["baseline_padded"] = baseline_seconds(resolved, items, opts, Path(tmp) / f"base{repeat}")
            runs["baseline_padded"].append(seconds)
            for variant in opts.variants:
                seconds, losses[variant] = ours_seconds(examples, opts, Path(tmp) / f"{variant}{repeat}", variant)
                runs[variant].append(seconds)
            print({k: round(v[-1], 1) for k, v in runs.items()}, flush=True)
    best = {k: min(v) for k, v in runs.items()}
    result = {
        "model": opts.model, "rows": len(items), "tokens_per_epoch": report.tokens, "epochs": opts.epochs,
        "batch_size": opts.batch_size, "max_length": report.max_length, "bf16": opts.bf16,
        "tuning": f"top {opts.trained_layers} layers" if opts.trained_layers else f"LoRA r={opts.lora_r}",
        "seconds": {k: [round(s, 1) for s in v] for k, v in runs.items()},
        "loss_per_epoch": losses,
        "tokens_per_second": {k: round(tokens / s, 1) for k, s in best.items()},
        "speedup_vs_baseline": {k: round(best["baseline_padded"] / s, 2) for k, s in best.items() if k != "baseline_padded"},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
