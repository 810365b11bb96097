#!/usr/bin/env python
"""What each fine-tuning lever buys: the Amazon example's configuration with one lever changed
at a time, run for real (local trainer, SmolLM2-135M) on the shipped sample or on real rows.

    python benchmarks/quality_study.py                                   # every lever, shipped sample
    python benchmarks/quality_study.py --data ../shared/data/amazon_titles_real_1k.json.gz
    python benchmarks/quality_study.py --levers baseline augmented       # some levers only

Each lever is a full Pipeline run in runs/quality/<data>/<lever> (rerunning returns the saved
report). The base model's answers are shared between runs through one answer cache. Results go
to benchmarks/results/quality_<data>.json and are printed as a Markdown table; docs/quality.md
holds the measured tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))

import amazon_titles  # noqa: E402

import finetunekit as ftk  # noqa: E402
from finetunekit.builtin.amazon import AMAZON_SYSTEM  # noqa: E402

#: The previous example's trainer: a LoRA adapter (r 16 on every linear layer) at learning rate 2e-3.
LORA = {"full_finetune": False, "learning_rate": 2e-3}
#: Trained refusals: 12 held-out negative products (1 : 4); 48 + 12 + 12 + 12 negatives sampled.
NEGATIVES = {"dataset": {"negative_size": 12, "sample_size": 84}, "refusal_formatter": "amazon-product-refusal"}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in (nested dicts merged, other values replaced)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def lever(k: int, epochs: int, *, templates: str = "amazon-product-varied", system: str | None = None,
          confidence_tokens: int = 40, **trainer: Any) -> dict[str, Any]:
    """Changes for ``k`` questions per product × ``epochs`` with these trainer options, scored with the
    40-token confidence the first levers were measured with unless told (300 = the whole answer)."""
    return {
        "prompts": {"train": templates, "questions_per_row": k},
        "system": system,
        "trainer": {"options": {"epochs": epochs, **trainer}},
        "evaluation": {"chat_options": {"confidence_tokens": confidence_tokens}},
    }


#: Answering in bfloat16 (this CPU computes in it natively), 32 questions per batch, both models.
BF16_ANSWERS = {"evaluation": {"chat_options": {"dtype": "auto", "batch_size": 32},
                               "base_model": {"options": {"dtype": "auto", "batch_size": 32}}}}


def top_layers(n: int) -> dict[str, Any]:
    """The example's training (4 × 4, lr 1e-3) with only the top ``n`` of 30 layers trained, answering in bf16."""
    return merged(lever(4, 4, confidence_tokens=300, full_finetune=True, learning_rate=1e-3, trained_layers=n),
                  BF16_ANSWERS)


#: lever -> changes to the example's configuration (dicts are merged, other values replace)
LEVERS: dict[str, dict[str, Any]] = {
    # the example's configuration as it is (full fine-tuning, 4 varied questions × 4 epochs, lr 1e-3)
    "baseline": {},
    # the previous example: LoRA, one question per product, 12 epochs
    "lora-baseline": lever(1, 12, templates="amazon-product", **LORA),
    # LoRA with many question shapes: 4 per product × 3 epochs, 2 × 6 (12 exposures each); a system message
    "augmented": lever(4, 3, **LORA),
    "augmented-k2": lever(2, 6, **LORA),
    "augmented+system": lever(4, 3, system=AMAZON_SYSTEM, **LORA),
    # LoRA with trained refusals, without and with augmentation and the system message
    "negatives": {**lever(1, 12, templates="amazon-product", **LORA), **NEGATIVES},
    "augmented+system+negatives": {**lever(4, 3, system=AMAZON_SYSTEM, **LORA), **NEGATIVES},
    # every weight trained, 4 varied questions per product, at three learning rates; 4 epochs; trained refusals
    "full-augmented": lever(4, 3, full_finetune=True, learning_rate=1e-4),
    "full-augmented-lr3e-4": lever(4, 3, full_finetune=True, learning_rate=3e-4),
    "full-augmented-lr1e-3": lever(4, 3, full_finetune=True, learning_rate=1e-3),
    "full-augmented-lr1e-3-4epochs": lever(4, 4, full_finetune=True, learning_rate=1e-3),
    # the top 15 / 10 / 6 of the 30 layers trained (backward stops early), answers in bfloat16
    "full-top15-bf16": top_layers(15),
    "full-top10-bf16": top_layers(10),
    "full-top6-bf16": top_layers(6),
    "full-augmented-lr1e-3+negatives": {**lever(4, 3, full_finetune=True, learning_rate=1e-3), **NEGATIVES},
    "full-augmented-lr3e-4+negatives": {**lever(4, 3, full_finetune=True, learning_rate=3e-4), **NEGATIVES},
}


def run_lever(name: str, data: str | None, root: Path, products: int, confidence: bool) -> dict[str, Any]:
    """One full run of the example's configuration with lever ``name``; its figures and minutes."""
    config = amazon_titles.build_config("local", data=data, run_dir=str(root / name), products=products)
    changes = merged(LEVERS[name], {"evaluation": {"abstain": confidence}})
    if not confidence:
        changes["dataset"] = {**changes.get("dataset", {}), "calibration_size": 0}
    record = merged(config.model_dump(), changes)
    record["evaluation"]["base_model"]["options"]["answer_cache_dir"] = str(root / "base-answers")
    start = time.perf_counter()
    pipeline = ftk.Pipeline.from_config(record)
    report = pipeline.run()
    timings = {stage: pipeline.manifest.stage_info(stage).get("seconds") for stage in ("prepare", "train", "evaluate")}
    calibration = root / name / "report" / "calibration.json"
    return {
        "lever": name,
        "changes": LEVERS[name],
        "wall_s": time.perf_counter() - start,
        "stage_seconds": timings,
        "summary": report.summary.to_dict(orient="records"),
        "findings": report.findings(),
        "calibration": json.loads(calibration.read_text()) if calibration.exists() else None,
        "threshold_sweep": threshold_sweep(root / name) if calibration.exists() else [],
    }


FIGURES = [
    ("train-questions", "format"), ("train-questions", "rouge_l"), ("train-questions", "false_refusal"),
    ("paraphrased", "format"), ("paraphrased", "rouge_l"), ("paraphrased", "false_refusal"),
    ("unseen-products", "abstention"), ("unseen-products", "confidence_auroc"),
]


def table(results: list[dict[str, Any]]) -> str:
    """The fine-tuned model's key figures per lever, with the training and evaluation minutes."""
    head = ["lever", *(f"{s} {m}" for s, m in FIGURES), "train min", "eval min"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for result in results:
        values = {(r["split"], r["metric"]): r["value"] for r in result["summary"] if r["model"] == "fine-tuned"}
        cells = [f"{values[key]:.3f}" if key in values else "–" for key in FIGURES]
        seconds = result["stage_seconds"]
        minutes = [f"{(seconds.get(s) or 0) / 60:.1f}" for s in ("train", "evaluate")]
        lines.append("| " + " | ".join([result["lever"], *cells, *minutes]) + " |")
    return "\n".join(lines)


BUDGETS = (0.0, 0.05, 0.1, 0.2)


def threshold_sweep(run_dir: Path) -> list[dict[str, float]]:
    """For each false-refusal budget: the threshold calibrated on the run's calibration scores
    and what it does to the eval answers (answers below it count as refused)."""
    import pandas as pd

    from finetunekit.evaluation.confidence import calibrate_threshold

    calibration = json.loads((run_dir / "report" / "calibration.json").read_text())
    if "known_scores" not in calibration:
        return []
    answers = pd.read_csv(run_dir / "report" / "answers.csv")
    tuned = answers[answers.model == "fine-tuned"]
    rows = []
    for budget in BUDGETS:
        cal = calibrate_threshold(calibration["known_scores"], calibration["unknown_scores"], max_false_refusal=budget)
        below = tuned.confidence < cal.threshold
        rows.append({
            "max_false_refusal": budget, "threshold": round(cal.threshold, 4),
            "calibration_abstention": cal.abstention, "calibration_false_refusal": cal.false_refusal,
            **{f"{split}_refused": float(below[tuned.split == split].mean())
               for split in ("train-questions", "paraphrased", "unseen-products")},
        })
    return rows


def sweep_table(rows: list[dict[str, float]]) -> str:
    """The threshold sweep as Markdown."""
    head = ["max_false_refusal", "threshold", "calibration: unknown refused", "calibration: known refused",
            "eval: unseen refused (abstention)", "eval: train-questions refused", "eval: paraphrased refused"]
    keys = ["max_false_refusal", "threshold", "calibration_abstention", "calibration_false_refusal",
            "unseen-products_refused", "train-questions_refused", "paraphrased_refused"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(f"{row[k]:.3g}" if isinstance(row[k], float) else str(row[k]) for k in keys) + " |"
              for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="AmazonTitles-schema file; default: the shipped sample")
    parser.add_argument("--levers", nargs="+", choices=sorted(LEVERS), default=list(LEVERS))
    parser.add_argument("--products", type=int, default=amazon_titles.PRODUCTS)
    parser.add_argument("--no-confidence", action="store_true", help="do not calibrate confidence-based abstention")
    args = parser.parse_args(argv)
    label = "sample" if args.data is None else Path(args.data).name.split(".")[0]
    root = Path("runs/quality") / label
    out = HERE / "results" / f"quality_{label}.json"
    results = json.loads(out.read_text()) if out.exists() else []
    for name in args.levers:
        result = run_lever(name, args.data, root, args.products, not args.no_confidence)
        results = json.loads(out.read_text()) if out.exists() else []  # other runs may have written meanwhile
        results = [r for r in results if r["lever"] != name] + [result]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(table([result]), flush=True)
    print(table(sorted(results, key=lambda r: list(LEVERS).index(r["lever"]))))
    for result in results:
        if result.get("threshold_sweep"):
            print(f"\nthreshold sweep, {result['lever']}:\n{sweep_table(result['threshold_sweep'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
