#!/usr/bin/env python
"""Which confidence score separates known from unknown products best: a finished quality-study
run's fine-tuned answers, re-scored by teacher forcing with several aggregations.

    python benchmarks/confidence_scores.py runs/quality/sample/baseline [more run dirs]

For each fine-tuned answer in ``report/answers.csv`` (the raw answer from the answer cache, before
any abstention), one forward pass gives the log-probability of every answer token. Scores: the
mean (or the minimum) over the first N tokens after ``--after`` (the answer format's fixed
opening). Printed: AUROC of known (train-questions + paraphrased) vs unknown (unseen-products)
answers, of paraphrased vs unknown alone, and the share of unknown answers below the highest
threshold that refuses at most 5 % of the known answers (on the eval answers themselves: an upper
bound of what a calibrated threshold can do); and, with each score, the threshold calibrated on the
run's calibration answers as the pipeline does (``--max-false-refusal``) and what it refuses on
the eval splits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402

from finetunekit.evaluation.confidence import auroc, calibrate_threshold  # noqa: E402

SPANS = (1, 2, 4, 8, 16, 40, 10_000)


def raw_answers(cache_dir: Path) -> dict[str, str]:
    """Question text -> the cached raw answer (the last user message keys it)."""
    out = {}
    for path in cache_dir.rglob("*.json"):
        entry = json.loads(path.read_text(encoding="utf-8"))
        out[entry["request"]["messages"][-1]["content"]] = entry["answer"]
    return out


def token_log_probs(loaded: Any, question_messages: list[dict[str, str]], answer: str) -> tuple[list[float], list[int]]:
    """The log-probability of each answer token after the prompt, and the answer's token ids."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    prompt = tokenizer.apply_chat_template(question_messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids], device=loaded.device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(answer_ids, device=loaded.device)[:, None])[:, 0]
    return logp.tolist(), answer_ids


def copied(tokenizer: Any, token_id: int, question: str) -> bool:
    """Whether the token's text (a word piece of two or more letters) occurs in the question."""
    piece = tokenizer.decode([token_id]).strip().lower()
    return len(piece) >= 2 and piece in question.lower()


def scores(loaded: Any, log_probs: list[float], answer_ids: list[int], after: str, question: str) -> dict[str, float]:
    """Mean and minimum log-probability over the first N tokens after ``after``, for each N; and
    the mean over the first N tokens that are not copied from the question ("novel"); the mean of
    the least likely 10 % / 25 % of the tokens ("tail"); minus the share of tokens below
    probability 0.5 / 0.9 ("unsure")."""
    from finetunekit.backends.local.confidence import start_after

    start = start_after(loaded.tokenizer, answer_ids, after)
    window = log_probs[start:] or log_probs
    ids = answer_ids[start:] if log_probs[start:] else answer_ids
    novel = [lp for lp, t in zip(window, ids) if not copied(loaded.tokenizer, t, question)] or window
    out = {}
    for n in SPANS:
        label = "all" if n == SPANS[-1] else str(n)
        for name, values in (("mean", window), ("novel", novel)):
            head = values[:n]
            out[f"{name}{label}"] = sum(head) / len(head)
        out[f"min{label}"] = min(window[:n])
    ordered = sorted(window)
    for share in (0.1, 0.25):  # the mean of the least likely tokens: where invented facts show
        tail = ordered[: max(1, round(share * len(ordered)))]
        out[f"tail{int(share * 100)}"] = sum(tail) / len(tail)
    for p in (0.5, 0.9):  # minus the share of tokens the model gave less than probability p
        out[f"unsure{p:g}"] = -sum(lp < math.log(p) for lp in window) / len(window)
    return out


def refused_within(known: list[float], unknown: list[float], budget: float = 0.05) -> float:
    """The share of unknown scores below the highest threshold refusing at most ``budget`` of known."""
    ordered = sorted(known)
    allowed = int(budget * len(ordered))
    threshold = ordered[allowed] if allowed < len(ordered) else float("inf")
    return sum(u < threshold for u in unknown) / len(unknown)


def analyse(run_dir: Path, after: str, max_false_refusal: float = 0.05) -> pd.DataFrame:
    """One row per score: AUROC (known vs unknown, paraphrased vs unknown), refused share, and
    the eval refusals under the threshold calibrated on the run's calibration answers."""
    from finetunekit.backends.local.loading import load_for_generation

    tuned = json.loads((run_dir / "train" / "fine_tuned_model.json").read_text())
    chat = tuned["chat_options"]
    loaded = load_for_generation(chat["model"], adapter=chat.get("adapter"), device="cpu", cache_dir=chat.get("cache_dir"),
                                 allow_hub=False, plugins=None, dtype=None, merge_adapter=True)
    answers = pd.read_csv(run_dir / "report" / "answers.csv")
    answers = answers[answers.model == "fine-tuned"]
    asked = [(record.split, record.question) for record in answers.itertuples()]
    raw = raw_answers(run_dir / "answers" / "fine-tuned")
    calibration_raw = raw_answers(run_dir / "answers" / "fine-tuned-calibration")
    held_out = [json.loads(line)["title"] for line in (run_dir / "data" / "calibration.jsonl").open(encoding="utf-8")]
    for question, answer in calibration_raw.items():  # calibration answers: about a held-out title or a trained one
        raw[question] = answer
        asked.append(("calibration-unknown" if any(t in question for t in held_out) else "calibration-known", question))
    rows = []
    for split, question in asked:
        messages = [{"role": "user", "content": question}]
        log_probs, ids = token_log_probs(loaded, messages, raw[question])
        rows.append({"split": split, **scores(loaded, log_probs, ids, after, question)})
    frame = pd.DataFrame(rows)
    table = []
    for column in frame.columns.drop("split"):
        by_split = {split: group[column].tolist() for split, group in frame.groupby("split")}
        known = by_split["train-questions"] + by_split["paraphrased"]
        unknown = by_split["unseen-products"]
        row = {"score": column, "auroc": auroc(known, unknown), "auroc_paraphrased": auroc(by_split["paraphrased"], unknown),
               "unknown_refused_at_5pct": refused_within(known, unknown)}
        if "calibration-unknown" in by_split:  # what the threshold calibrated as the pipeline does gives on eval
            threshold = calibrate_threshold(by_split.get("calibration-known", []), by_split["calibration-unknown"],
                                            max_false_refusal=max_false_refusal).threshold
            for split, name in (("unseen-products", "abstention"), ("train-questions", "fr_train"), ("paraphrased", "fr_para")):
                row[f"calibrated_{name}"] = sum(s < threshold for s in by_split[split]) / len(by_split[split])
        table.append(row)
    return pd.DataFrame(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--after", default="from Amazon:")
    parser.add_argument("--max-false-refusal", type=float, default=0.05)
    args = parser.parse_args(argv)
    for run in args.runs:
        print(f"\n{run}\n" + analyse(run, args.after, args.max_false_refusal).to_string(index=False, float_format="%.3f"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
