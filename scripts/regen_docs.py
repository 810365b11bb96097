#!/usr/bin/env python
"""Rewrite the generated tables in docs/ (configuration reference, backend options) in place.

    python scripts/regen_docs.py

The tests check that each table equals what ``finetunekit.config_docs`` generates.
"""

from __future__ import annotations

import re
from pathlib import Path

from finetunekit.config_docs import component_options_markdown, config_reference_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"
TABLE = re.compile(r"^\| (field|option) \| default \| description \|\n(?:\|.*\n)*", re.MULTILINE)
BACKENDS = [("register_trainers", "local"), ("register_chat_models", "local"),
            ("register_trainers", "openai"), ("register_chat_models", "openai")]


def _fields(table: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", table, re.MULTILINE))


def main() -> None:
    path = DOCS / "configuration.md"
    path.write_text(TABLE.sub(lambda _: config_reference_markdown(), path.read_text(encoding="utf-8"), count=1),
                    encoding="utf-8")
    path = DOCS / "backends.md"
    text = path.read_text(encoding="utf-8")
    tables = {hook_name: component_options_markdown(*hook_name) for hook_name in BACKENDS}
    used: set[tuple[str, str]] = set()

    def replace(match: re.Match[str]) -> str:
        old = _fields(match.group(0))
        best = max((k for k in tables if k not in used), key=lambda k: len(old & _fields(tables[k])) - len(old ^ _fields(tables[k])))
        used.add(best)
        return tables[best]

    path.write_text(TABLE.sub(replace, text), encoding="utf-8")


if __name__ == "__main__":
    main()
