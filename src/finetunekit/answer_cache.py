"""An on-disk answer cache any ChatModel can use, so a rerun pays only for what is missing.

Each answer is one small JSON file named by the SHA-256 of the request — backend, model,
the options that change answers, and the messages — written atomically, so concurrent
threads (or processes) never see half an entry. An entry whose stored request differs from
the one asked for (a corrupt or foreign file) counts as missing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from finetunekit.atomic import write_json

FORMAT_VERSION = 1


def request_key(backend: str, model: str, options: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The canonical description of one request (what the cache key hashes)."""
    return {
        "v": FORMAT_VERSION,
        "backend": backend,
        "model": model,
        "options": {k: options[k] for k in sorted(options)},
        "messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in messages],
    }


def hash_request(request: Mapping[str, Any]) -> str:
    """Hex SHA-256 of a request's canonical JSON."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AnswerCache:
    """Answers stored under ``directory`` (``ab/abcdef….json``), safe for concurrent use."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, request: Mapping[str, Any]) -> str | None:
        """The cached answer to ``request``, or ``None``."""
        entry = self.get_entry(request)
        return None if entry is None else entry[0]

    def get_entry(self, request: Mapping[str, Any]) -> tuple[str, float | None] | None:
        """The cached ``(answer, confidence)`` for ``request`` (confidence ``None`` when the
        backend gave none), or ``None``."""
        path = self._path(hash_request(request))
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(entry, dict) or entry.get("request") != dict(request):
            return None
        answer, confidence = entry.get("answer"), entry.get("confidence")
        if not isinstance(answer, str):
            return None
        return answer, float(confidence) if isinstance(confidence, (int, float)) else None

    def put(self, request: Mapping[str, Any], answer: str, confidence: float | None = None) -> None:
        """Store ``answer`` (and its confidence, if any) for ``request`` (atomically; the last
        writer wins)."""
        entry: dict[str, Any] = {"request": dict(request), "answer": answer}
        if confidence is not None:
            entry["confidence"] = confidence
        write_json(self._path(hash_request(request)), entry)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json")) if self.directory.exists() else 0
