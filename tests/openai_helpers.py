"""Shared helpers for the OpenAI backend tests (examples, trainers pointed at a fake)."""

from __future__ import annotations

import gzip
import html
import json
from pathlib import Path
from typing import Any

from finetunekit.registry import get_chat_model, get_trainer

REAL_ROWS = Path("/work/shared/data/amazon_titles_real_1k.json.gz")


def make_examples(n: int = 12, prefix: str = "Item") -> list[dict[str, Any]]:
    """``n`` chat examples whose answers differ per question."""
    return [
        {"messages": [
            {"role": "user", "content": f"Tell me about {prefix} {i} from Amazon."},
            {"role": "assistant", "content": f"This is what I know about {prefix} {i} from Amazon: fact {i}."},
        ]}
        for i in range(n)
    ]


def real_examples(n: int) -> list[dict[str, Any]]:
    """Examples from the real AmazonTitles rows (callers skip when the file is absent)."""
    examples = []
    with gzip.open(REAL_ROWS, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            title, content = (row.get("title") or "").strip(), html.unescape(row.get("content") or "").strip()
            if title and content:
                examples.append({"messages": [
                    {"role": "user", "content": f"Tell me about {title} from Amazon."},
                    {"role": "assistant", "content": f"This is what I know about {title} from Amazon: {content}"},
                ]})
            if len(examples) == n:
                break
    return examples


def fake_trainer(fake: Any, pm: Any, **options: Any) -> Any:
    """The "openai" trainer using a real SDK client pointed at ``fake``, polling fast, quiet."""
    options.setdefault("poll_interval_min", 0.001)
    options.setdefault("poll_interval_max", 0.002)
    options.setdefault("client", fake.client(max_retries=0))
    trainer = get_trainer("openai", plugins=pm, **options)
    trainer.lines = []
    trainer.say = trainer.lines.append
    return trainer


def fake_chat(fake: Any, pm: Any, **options: Any) -> Any:
    """The "openai" chat model on ``fake`` with quiet progress."""
    options.setdefault("client", fake.client())
    options.setdefault("progress", False)
    return get_chat_model("openai", plugins=pm, **options)


def fake_batch_chat(fake: Any, pm: Any, cache_dir: Any, **options: Any) -> Any:
    """The "openai" chat model in batch mode on ``fake``, polling fast, its lines collected in
    ``.lines`` (``progress=True`` so that they are said)."""
    options.setdefault("client", fake.client(max_retries=3))
    options.setdefault("batch_poll_interval_min", 0.001)
    options.setdefault("batch_poll_interval_max", 0.002)
    options.setdefault("progress", True)
    chat = get_chat_model("openai", plugins=pm, batch=True, answer_cache_dir=str(cache_dir), **options)
    chat.lines = []
    chat.say = chat.lines.append
    chat.sleep = lambda seconds: None
    return chat


def kill_child_once_polling(fake: Any, script: str, args: list[str], route: str, polls: int = 3) -> None:
    """Run ``script`` (``python -c``, with ``FAKE_KEY`` holding the fake's key and this
    checkout's sources first on the path) and SIGKILL it once the fake saw ``polls`` requests
    of ``route`` (the child is waiting on its job or batch)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "FAKE_KEY": fake.api_key,
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", script, *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300  # a loaded machine may take minutes to start the child
        while fake.count(route) < polls:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, f"the child never polled {route}"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
