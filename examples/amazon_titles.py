"""The reference task: teach a chat model what an Amazon catalogue says about its products.

By default it runs offline on the AmazonTitles sample shipped with finetunekit, fine-tunes the
bundled SmolLM2-135M-Instruct (every weight of its top 10 layers) on this machine, evaluates the
base and the fine-tuned model on three eval sets and prints the summary table (8–9.5 min on a
quiet 2-core CPU, fresh model cache, peak RSS 1.91 GiB; docs/benchmarks.md)::

    python examples/amazon_titles.py
    python examples/amazon_titles.py --data trn.json.gz            # the real corpus
    python examples/amazon_titles.py --backend openai --dry-run    # check data and cost only
    python examples/amazon_titles.py --backend openai              # OPENAI_API_KEY from the env

``examples/amazon_titles.toml`` is the same configuration as a file for ``finetunekit run``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import finetunekit as ftk  # noqa: E402
from finetunekit.errors import FinetunekitError  # noqa: E402

PRODUCTS = 48
HELD_OUT = 12
#: Held-out products on which the fine-tuned model's abstention threshold is calibrated.
CALIBRATION = 12
#: Training questions per product and passes over them: each description is seen 16 times.
QUESTIONS_PER_PRODUCT = 4
EPOCHS = 4
#: Decoder layers trained (the top ones; the 20 below and the embeddings stay frozen).
TRAINED_LAYERS = 10
LOCAL_MODEL = "smollm2-135m-instruct"
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
#: The AmazonTitles-schema sample shipped with finetunekit's built-in Amazon plugin.
SAMPLE_SOURCE = "package:finetunekit.builtin.sample_data/amazon_titles_sample.json.gz"


def build_config(
    backend: str = "local",
    *,
    data: str | None = None,
    run_dir: str | None = None,
    products: int = PRODUCTS,
    held_out: int = HELD_OUT,
    calibration: int = CALIBRATION,
) -> ftk.PipelineConfig:
    """The Amazon-titles configuration for the chosen backend (defaults chosen by
    benchmarks/quality_study.py; see docs/quality.md)."""
    abstain = backend == "local" and calibration > 0  # the local chat model scores its answers
    if backend == "local":
        trainer: dict[str, Any] = {
            "name": "local",
            # full fine-tuning of the top 10 of 30 layers (LoRA recited less and kept less under new wording,
            # every layer took longer and held less; docs/quality.md); max_length is the longest example
            "options": {"model": LOCAL_MODEL, "full_finetune": True, "trained_layers": TRAINED_LAYERS,
                        "epochs": EPOCHS, "learning_rate": 1e-3, "batch_size": 8,
                        # each batch of 8 in pieces of up to 2,048 tokens, the trained layers' activations
                        # recomputed in the backward pass: 0.76x the peak memory (docs/benchmarks.md)
                        "micro_batch_tokens": 2048, "gradient_checkpointing": True},
        }
        # both models answer in bfloat16 where the CPU computes in it (float32 elsewhere), 32 at a time;
        # the base model's answers are capped shorter: it rambles to the cap on every question
        answering = {"dtype": "auto", "batch_size": 54}
        base_model: dict[str, Any] = {"name": "local", "options": {"model": LOCAL_MODEL, "max_new_tokens": 128, **answering}}
        # confidence: the mean log-probability of the whole answer after its fixed opening
        chat_options: dict[str, Any] = {"max_new_tokens": 300, **answering, "confidence_after": "from Amazon:",
                                        "confidence_tokens": 300}
    elif backend == "openai":
        trainer = {"name": "openai", "options": {"model": OPENAI_MODEL, "suffix": "amazon-titles"}}
        base_model = {"name": "openai", "options": {"model": OPENAI_MODEL}}
        chat_options = {"max_tokens": 300}
    else:
        raise ValueError(f"unknown backend {backend!r}; expected 'local' or 'openai'")
    return ftk.PipelineConfig.model_validate(
        {
            "run_dir": run_dir or f"runs/amazon-titles-{backend}",
            "seed": 42,
            "dataset": {
                "source": data or SAMPLE_SOURCE,
                "columns": {"title": "title", "content": "content"},
                "clean": {"min_content_length": 40, "rules": ["amazon-titles"]},
                "sample_size": products + held_out + (calibration if abstain else 0),
                "test_size": held_out,
                "calibration_size": calibration if abstain else 0,
            },
            # each product asked in QUESTIONS_PER_PRODUCT of 33 question shapes (never a paraphrase template)
            "prompts": {"train": "amazon-product-varied", "paraphrased": "amazon-product-paraphrased",
                        "questions_per_row": QUESTIONS_PER_PRODUCT},
            "formatter": "amazon-product",
            "trainer": trainer,
            "evaluation": {
                "base_model": base_model,
                "chat_options": chat_options,
                "abstain": abstain,
                "max_false_refusal": 0.05,
            },
        }
    )


def main(argv: list[str] | None = None) -> int:
    """Run the task; print the summary table, the report's path and the wall time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("local", "openai"), default="local")
    parser.add_argument("--data", help="AmazonTitles file (e.g. trn.json.gz); default: the shipped sample")
    parser.add_argument("--run-dir", help="where the run's files go (default runs/amazon-titles-BACKEND)")
    parser.add_argument("--products", type=int, default=PRODUCTS, help="products trained on")
    parser.add_argument("--held-out", type=int, default=HELD_OUT, help="products kept for unseen-products")
    parser.add_argument("--calibration", type=int, default=CALIBRATION,
                        help="held-out products that calibrate abstention (0: no abstention)")
    parser.add_argument("--dry-run", action="store_true", help="prepare and validate only; upload nothing")
    parser.add_argument("--fresh", action="store_true", help="start over in an existing run directory")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        config = build_config(
            args.backend, data=args.data, run_dir=args.run_dir, products=args.products, held_out=args.held_out,
            calibration=args.calibration,
        )
        pipeline = ftk.Pipeline.from_config(config, fresh=args.fresh)
        if args.dry_run:
            print(pipeline.dry_run())
            print(f"dry run: examples prepared in {pipeline.run_dir / 'examples'}; nothing was trained or uploaded")
            return 0
        report = pipeline.run()
    except FinetunekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ftk.print_report(report, pipeline.run_dir / "report")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
