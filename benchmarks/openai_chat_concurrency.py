"""Benchmark: answering N questions against the fake OpenAI server with a fixed latency.

Baseline (the notebook way): one ``client.chat.completions.create`` call at a time.
Compared with: ``get_chat_model("openai", concurrency=C)`` for each C given.

    python benchmarks/openai_chat_concurrency.py --questions 500 --latency 0.3 --concurrency 8 32
"""

from __future__ import annotations

import argparse
import platform
import time

from finetunekit.plugins import create_plugin_manager
from finetunekit.registry import get_chat_model
from finetunekit.testing import FakeOpenAI


def sequential(fake: FakeOpenAI, questions: list[str]) -> list[str]:
    """The notebook way: a plain loop over the SDK, one request at a time."""
    client = fake.client(strict=False)
    return [client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
            .choices[0].message.content for q in questions]


def concurrent(fake: FakeOpenAI, questions: list[str], concurrency: int) -> list[str]:
    """The library's chat model (no cache, no progress bar)."""
    chat = get_chat_model("openai", plugins=create_plugin_manager(False), client=fake.client(strict=False),
                          concurrency=concurrency, progress=False)
    return chat.answer(questions)


def main() -> None:
    """Run the baseline and each concurrency; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    questions = [f"Tell me about product {i} from Amazon." for i in range(args.questions)]
    with FakeOpenAI(latency=args.latency) as fake:
        start = time.perf_counter()
        reference = sequential(fake, questions)
        base = time.perf_counter() - start
        rows = [("sequential SDK loop (baseline)", base, 1.0)]
        for c in args.concurrency:
            start = time.perf_counter()
            answers = concurrent(fake, questions, c)
            took = time.perf_counter() - start
            assert answers == reference, "answers differ from the baseline's"
            rows.append((f"chat model, concurrency={c}", took, base / took))
    print(f"{args.questions} questions, {args.latency * 1000:.0f} ms latency per request, "
          f"{platform.machine()} {platform.python_version()}\n")
    print("| method | wall time (s) | speed-up vs baseline |\n| --- | ---: | ---: |")
    for name, took, ratio in rows:
        print(f"| {name} | {took:.1f} | {ratio:.1f}× |")


if __name__ == "__main__":
    main()
