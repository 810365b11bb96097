#!/usr/bin/env python
"""Full fine-tuning of every layer vs the top N layers, with and without the frozen-layer cache:
seconds per epoch over the same batches (bf16 autocast, chunked loss, 512-token micro-batches,
AdamW), as the example trains.

    python benchmarks/bench_train_layers.py --rows 48 --trained-layers 10 --repeats 2

Every variant trains its own copy of the model for two epochs over the same batches of
``--batch-size`` Amazon examples (the example's varied question shapes); the first epoch of the
cached variant fills the cache, so its second epoch is the one that shows the cache's effect.
Variants run interleaved, ``--repeats`` times; the best second-epoch time is kept. Baseline:
every layer trained.
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

from local_sample import amazon_examples, load_rows, pick  # noqa: E402


def make_variant(resolved: str, trained_layers: int | None, cached: bool):
    """A fresh model, optimizer and (optionally) installed frozen-layer cache."""
    import torch

    from finetunekit.backends.local.freezing import decoder_layers, freeze_below_top_layers
    from finetunekit.backends.local.frozen_cache import FrozenLayerCache
    from finetunekit.backends.local.loading import load_causal_lm

    model = load_causal_lm(resolved, device="cpu")
    model.config.use_cache = False
    cache = None
    if trained_layers is not None:
        freeze_below_top_layers(model, trained_layers)
        if cached:
            layers = decoder_layers(model)
            cache = FrozenLayerCache(layers, len(layers) - trained_layers)
            cache.install()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    return model, optimizer, cache


def epoch_seconds(model, optimizer, cache, batches) -> tuple[float, float]:
    """Seconds for one pass over ``batches`` and the mean loss."""
    import contextlib

    import torch

    from finetunekit.backends.local.batching import micro_batches
    from finetunekit.backends.local.loss import chunked_causal_lm_loss

    start, losses = time.perf_counter(), []
    for batch in batches:
        n_labels = int((batch["labels"][:, 1:] != -100).sum())
        total = 0.0
        for part in micro_batches(batch, 512, packed=False):
            with torch.autocast("cpu", dtype=torch.bfloat16), (cache.batch(part) if cache else contextlib.nullcontext()):
                loss, _ = chunked_causal_lm_loss(model, part, n_labels)
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(total)
    return time.perf_counter() - start, sum(losses) / len(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--trained-layers", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", default=None, help="AmazonTitles-schema file (default: the shipped sample)")
    opts = parser.parse_args()

    from finetunekit.backends.local.collation import ChatDataset, PaddingCollator, tokenize_examples
    from finetunekit.backends.local.loading import load_tokenizer
    from finetunekit.backends.local.sources import resolve_model

    resolved = resolve_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer(resolved)
    examples = amazon_examples(pick(load_rows(opts.data), opts.rows), templates="amazon-product-varied")
    items, report = tokenize_examples(tokenizer, examples, "auto", cap=2048)
    data = ChatDataset(sorted(items, key=lambda item: len(item.input_ids)))  # batches of similar length
    collate = PaddingCollator(tokenizer.pad_token_id)
    batches = [collate([data[i] for i in range(s, min(s + opts.batch_size, len(data)))])
               for s in range(0, len(data), opts.batch_size)]
    variants = {
        "every layer (baseline)": (None, False),
        f"top {opts.trained_layers} layers": (opts.trained_layers, False),
        f"top {opts.trained_layers} layers + frozen-layer cache": (opts.trained_layers, True),
    }
    best: dict[str, float] = {}
    loss: dict[str, float] = {}
    for _ in range(opts.repeats):
        for name, (trained_layers, cached) in variants.items():
            model, optimizer, cache = make_variant(resolved, trained_layers, cached)
            epoch_seconds(model, optimizer, cache, batches)  # first epoch: warm-up (and fills the cache)
            seconds, loss[name] = epoch_seconds(model, optimizer, cache, batches)
            best[name] = min(best.get(name, float("inf")), seconds)
            del model, optimizer, cache
    baseline = next(iter(variants))
    print(json.dumps({
        "examples": len(items), "tokens": report.tokens, "batches": len(batches),
        **{name: {"second_epoch_s": round(best[name], 1), "speedup": round(best[baseline] / best[name], 2),
                  "tokens_per_s": round(report.tokens / best[name]), "mean_loss": round(loss[name], 4)}
           for name in variants},
    }, indent=1))


if __name__ == "__main__":
    main()
