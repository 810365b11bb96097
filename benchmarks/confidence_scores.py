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
bound of what a calibrated threshold can do).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402

from finetunekit.evaluation.confidence import auroc  # noqa: E402

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
    the mean over the first N tokens that are not copied from the question ("novel")."""
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
    return out


def refused_within(known: list[float], unknown: list[float], budget: float = 0.05) -> float:
    """The share of unknown scores below the highest threshold refusing at most ``budget`` of known."""
    ordered = sorted(known)
    allowed = int(budget * len(ordered))
    threshold = ordered[allowed] if allowed < len(ordered) else float("inf")
    return sum(u < threshold for u in unknown) / len(unknown)


def analyse(run_dir: Path, after: str) -> pd.DataFrame:
    """One row per score: AUROC (known vs unknown, paraphrased vs unknown) and refused share."""
    from finetunekit.backends.local.loading import load_for_generation

    tuned = json.loads((run_dir / "train" / "fine_tuned_model.json").read_text())
    chat = tuned["chat_options"]
    loaded = load_for_generation(chat["model"], adapter=chat.get("adapter"), device="cpu", cache_dir=chat.get("cache_dir"),
                                 allow_hub=False, plugins=None, dtype=None, merge_adapter=True)
    answers = pd.read_csv(run_dir / "report" / "answers.csv")
    answers = answers[answers.model == "fine-tuned"]
    raw = raw_answers(run_dir / "answers" / "fine-tuned")
    rows = []
    for record in answers.itertuples():
        messages = [{"role": "user", "content": record.question}]
        log_probs, ids = token_log_probs(loaded, messages, raw[record.question])
        rows.append({"split": record.split, **scores(loaded, log_probs, ids, after, record.question)})
    frame = pd.DataFrame(rows)
    table = []
    for column in frame.columns.drop("split"):
        known = frame[frame.split != "unseen-products"][column].tolist()
        para = frame[frame.split == "paraphrased"][column].tolist()
        unknown = frame[frame.split == "unseen-products"][column].tolist()
        table.append({"score": column, "auroc": auroc(known, unknown), "auroc_paraphrased": auroc(para, unknown),
                      "unknown_refused_at_5pct": refused_within(known, unknown)})
    return pd.DataFrame(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--after", default="from Amazon:")
    args = parser.parse_args(argv)
    for run in args.runs:
        print(f"\n{run}\n" + analyse(run, args.after).to_string(index=False, float_format="%.3f"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
