"""An on-disk answer cache for the local chat model: one JSON file per (identity, messages) hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from finetunekit.atomic import write_json


def directory_fingerprint(path: str | Path) -> str:
    """A hash of the names, sizes and modification times of the files in ``path`` (not contents)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class AnswerCache:
    """Answers stored under ``folder``, keyed by a hash of ``identity`` and the messages."""

    def __init__(self, folder: str | Path, identity: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.identity = json.dumps(identity, sort_keys=True)

    def _path(self, messages: list[dict[str, str]]) -> Path:
        key = hashlib.sha256((self.identity + json.dumps(messages, sort_keys=True)).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.json"

    def get(self, messages: list[dict[str, str]]) -> str | None:
        """The cached answer, or None."""
        path = self._path(messages)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["answer"]
        except (ValueError, KeyError, OSError):
            return None

    def put(self, messages: list[dict[str, str]], answer: str) -> None:
        """Store ``answer`` atomically."""
        write_json(self._path(messages), {"messages": messages, "answer": answer})
