"""Amazon-style chat examples for the local benchmarks (real rows if present, else the shipped sample)."""

from __future__ import annotations

import gzip
import html
import json
import random
from pathlib import Path

REAL_ROWS = Path("/work/shared/data/amazon_titles_real_1k.json.gz")


def shipped_sample() -> Path:
    """The sample finetunekit ships (generated rows in the AmazonTitles schema)."""
    from finetunekit.builtin.amazon import sample_data_path

    return sample_data_path()


def load_rows(path: str | None = None) -> list[dict]:
    """Rows with a title and a content of over 40 characters (HTML entities decoded), from
    ``path``, ``"real"`` (the 1k real rows) or, by default, the shipped sample."""
    candidates = [REAL_ROWS if path == "real" else Path(path)] if path else [shipped_sample()]
    for candidate in candidates:
        if candidate.is_file():
            opener = gzip.open if candidate.suffix == ".gz" else open
            with opener(candidate, "rt", encoding="utf-8") as handle:
                raw = [json.loads(line) for line in handle if line.strip()]
            rows = []
            for record in raw:
                title = html.unescape(str(record.get("title") or "")).strip()
                content = " ".join(html.unescape(str(record.get("content") or "")).split())
                if title and len(content) >= 40:
                    rows.append({"_row_id": len(rows), "title": title, "content": content})
            return rows
    raise SystemExit(f"no sample data found (looked for {[str(c) for c in candidates]})")


def amazon_examples(rows: list[dict], templates: str = "amazon-product", seed: int = 0) -> list[dict]:
    """One chat example per row: a templated question and the seed answer format."""
    from finetunekit.examples.formatters import ResponseFormatter
    from finetunekit.examples.prompts import PromptGenerator

    questions = PromptGenerator(templates=templates, seed=seed).generate(rows)
    formatter = ResponseFormatter("This is what I know about {title} from Amazon: {content}")
    return [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": formatter.format(row)}]}
        for q, row in zip(questions, rows)
    ]


def pick(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` rows chosen at random (seeded)."""
    return random.Random(seed).sample(rows, min(n, len(rows)))
