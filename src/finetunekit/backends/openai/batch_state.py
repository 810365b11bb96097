"""What the Batch API path of the openai chat model records on disk, and its errors.

Each batch is recorded under ``<answer_cache_dir>/batches/`` *before* anything is uploaded:

- ``<token>.requests.jsonl`` — one line per request: ``custom_id``, the answer-cache request
  (what its answer is stored under) and the ``/v1/chat/completions`` body; the uploaded input
  file is derived from it, byte for byte the same on every attempt;
- ``<token>.json`` — a :class:`BatchRecord`: the input file id, the batch id, the last status
  seen and whether its results were collected into the answer cache.

A rerun (also after a kill) finds the open records whose requests it still needs and waits
for those batches instead of sending the requests again. No record holds an API key.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field

from finetunekit.answer_cache import hash_request
from finetunekit.atomic import atomic_open, write_json
from finetunekit.errors import ConfigError
from finetunekit.backends.openai.chat import ChatRequestError

BATCH_DIR = "batches"
BATCH_ENDPOINT = "/v1/chat/completions"
#: metadata key carrying the record's token on the batch, to find a batch created by a killed run
RUN_TOKEN_KEY = "finetunekit_batch"
MAX_LISTED_LINES = 5


@dataclass(frozen=True)
class BatchRequest:
    """One request of a batch: its ``custom_id``, answer-cache request and API body."""

    custom_id: str
    cache_request: dict[str, Any]
    body: dict[str, Any]

    @property
    def key(self) -> str:
        """The answer-cache hash of the request (what identifies it across runs)."""
        return hash_request(self.cache_request)

    @property
    def question(self) -> str:
        """The last user message (for error messages)."""
        users = [m["content"] for m in self.body.get("messages", []) if m.get("role") == "user"]
        return str(users[-1]) if users else ""

    def input_line(self) -> dict[str, Any]:
        """The line of the uploaded input file."""
        return {"custom_id": self.custom_id, "method": "POST", "url": BATCH_ENDPOINT, "body": self.body}


class BatchRecord(BaseModel):
    """``<token>.json``: enough to reattach to one batch, and no secret."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(default_factory=lambda: uuid.uuid4().hex)
    endpoint: str
    model: str
    n_requests: int
    round: int = 1
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    collected: bool = False
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @staticmethod
    def directory(cache_dir: str | Path) -> Path:
        """Where the records of an answer cache live."""
        return Path(cache_dir) / BATCH_DIR

    def path(self, directory: Path) -> Path:
        """This record's file."""
        return directory / f"{self.token}.json"

    def save(self, directory: Path) -> None:
        """Write the record atomically."""
        self.updated_at = time.time()
        write_json(self.path(directory), self.model_dump(mode="json"))

    def save_requests(self, directory: Path, requests: list[BatchRequest]) -> None:
        """Write ``<token>.requests.jsonl`` atomically (before the record, so a record always
        has its requests)."""
        with atomic_open(directory / f"{self.token}.requests.jsonl") as handle:
            for request in requests:
                handle.write(json.dumps({"custom_id": request.custom_id, "request": request.cache_request,
                                         "body": request.body}, ensure_ascii=False) + "\n")

    def requests(self, directory: Path) -> list[BatchRequest]:
        """The recorded requests, in input-file order."""
        path = directory / f"{self.token}.requests.jsonl"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            return [BatchRequest(d["custom_id"], d["request"], d["body"]) for d in map(json.loads, lines) if d]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} (the requests of batch record {self.path(directory)}) cannot be read "
                              f"({exc}); delete both files to forget that batch") from exc

    @classmethod
    def open_records(cls, directory: Path) -> Iterator[BatchRecord]:
        """Records whose results were not collected yet, oldest first."""
        if not directory.is_dir():
            return
        records = []
        for path in directory.glob("*.json"):
            try:
                record = cls.model_validate_json(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"{path} is not a valid batch record ({exc}); delete it (and its "
                                  ".requests.jsonl) to forget that batch") from exc
            if not record.collected:
                records.append(record)
        yield from sorted(records, key=lambda r: r.created_at)


def input_bytes(requests: list[BatchRequest]) -> bytes:
    """The JSONL input file of ``requests``."""
    return "".join(json.dumps(r.input_line(), ensure_ascii=False) + "\n" for r in requests).encode("utf-8")


@dataclass(frozen=True)
class LineError:
    """Why one request of a batch got no answer."""

    custom_id: str
    question: str
    batch_id: str
    status_code: int | None
    code: str | None
    message: str

    def __str__(self) -> str:
        status = f"HTTP {self.status_code} " if self.status_code else ""
        question = self.question if len(self.question) <= 80 else self.question[:77] + "..."
        return f"{self.custom_id} ({question!r}) in {self.batch_id}: {status}{self.code or 'error'}: {self.message}"


class BatchError(ChatRequestError):
    """A batch did not answer every request; the answers it gave are cached, so a rerun sends only
    the rest. ``lines``: a :class:`LineError` per unanswered request."""

    def __init__(self, message: str, lines: list[LineError]) -> None:
        self.lines = lines
        shown = "; ".join(str(line) for line in lines[:MAX_LISTED_LINES])
        more = f" (and {len(lines) - MAX_LISTED_LINES} more)" if len(lines) > MAX_LISTED_LINES else ""
        super().__init__(f"{message}: {shown}{more}" if lines else message, len(lines))


class BatchLinesError(BatchError):
    """Requests still failed after the retry batches (or failed in a way a retry cannot fix)."""


class BatchFailedError(BatchError):
    """The API failed the whole batch (e.g. its input did not validate); ``errors`` holds the
    batch's error objects (``code``, ``message``, ``line``)."""

    def __init__(self, message: str, lines: list[LineError], errors: list[Mapping[str, Any]]) -> None:
        self.errors = [dict(e) for e in errors]
        super().__init__(message, lines)


class BatchCancelledError(BatchError):
    """The batch was cancelled (not by finetunekit); its unanswered requests are not resent."""
