"""Chat examples: rows turned into ``{"messages": [...]}`` records, written and read as JSONL.

``build_examples`` asks a :class:`~finetunekit.PromptGenerator` for the question and a
:class:`~finetunekit.ResponseFormatter` for the answer of every row. The resulting
:class:`ExampleSet` holds the training records exactly as they are written, plus per-example
metadata (source row id, template) that never reaches the training file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Mapping, overload

from finetunekit.atomic import atomic_open
from finetunekit.errors import ConfigError, DataError
from finetunekit.examples.tokens import Encoder, TokenCounter
from finetunekit.examples.validation import Issue, ValidationReport, validate_examples

OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class Skipped:
    """An input left out under ``on_error="skip"``: where it was and why."""

    where: str
    reason: str


class ExampleSet:
    """Chat fine-tuning examples with per-example metadata (not written to the training file).

    ``examples[i]`` is exactly the record written to JSONL line ``i + 1``;
    ``metadata[i]`` holds ``row_id`` and ``template`` (built examples) or ``line`` and
    ``source`` (examples read from a file). ``skipped`` lists inputs left out on purpose.
    """

    def __init__(
        self,
        examples: Iterable[Any],
        metadata: Iterable[Mapping[str, Any]] | None = None,
        *,
        skipped: Iterable[Skipped] = (),
    ) -> None:
        self.examples: list[Any] = list(examples)
        self.metadata: list[dict[str, Any]] = (
            [dict(m) for m in metadata] if metadata is not None else [{} for _ in self.examples]
        )
        if len(self.metadata) != len(self.examples):
            raise ValueError(f"{len(self.examples)} examples but {len(self.metadata)} metadata entries")
        self.skipped: list[Skipped] = list(skipped)

    # -- sequence protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.examples)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> ExampleSet: ...
    def __getitem__(self, index: int | slice) -> Any:
        """An example dict, or for a slice a new ExampleSet with the matching metadata."""
        if isinstance(index, slice):
            return ExampleSet(self.examples[index], self.metadata[index])
        return self.examples[index]

    def __repr__(self) -> str:
        return f"ExampleSet({len(self)} examples, {len(self.skipped)} skipped)"

    # -- views -------------------------------------------------------------------------
    def user_questions(self) -> list[str]:
        """The last user message of each example (the question its answer replies to)."""
        return [self._last(i, "user") for i in range(len(self))]

    def assistant_answers(self) -> list[str]:
        """The last assistant message of each example (the reference answer)."""
        return [self._last(i, "assistant") for i in range(len(self))]

    def prompt_messages(self) -> list[list[dict[str, Any]]]:
        """Each example's messages before its last assistant message: what a model is asked."""
        out = []
        for i, example in enumerate(self.examples):
            messages = _messages(example, i, self.metadata[i].get("line"))
            last = max((j for j, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
            out.append([dict(m) for m in messages[:last]])
        return out

    def _last(self, index: int, role: str) -> str:
        line = self.metadata[index].get("line")
        for message in reversed(_messages(self.examples[index], index, line)):
            if message.get("role") == role and isinstance(message.get("content"), str):
                return message["content"]
        raise DataError(f"example {index} has no {role} message with text content", line=line)

    # -- files -------------------------------------------------------------------------
    def to_jsonl(self, path: str | os.PathLike[str]) -> Path:
        """Write one JSON object per line (UTF-8, unescaped unicode), atomically; return the path."""
        target = Path(path)
        with atomic_open(target, "wb") as handle:
            for line in self._lines():
                handle.write(line)
        return target

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the bytes :meth:`to_jsonl` writes: equal sets, equal fingerprints."""
        digest = hashlib.sha256()
        for line in self._lines():
            digest.update(line)
        return digest.hexdigest()

    def _lines(self) -> Iterator[bytes]:
        for index, example in enumerate(self.examples):
            yield _json_line(example, index)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str], on_error: OnError = "raise") -> ExampleSet:
        """Read a JSONL file of examples. A broken line raises :class:`DataError` naming the
        file, line and column, or with ``on_error="skip"`` is left out and listed in ``skipped``.
        Blank lines are ignored. Record structure is checked by :meth:`validate`, not here."""
        check_on_error(on_error)
        source = Path(path)
        if not source.is_file():
            raise DataError("file not found (expected a JSONL file of chat examples)", path=source)
        examples, metadata, skipped = [], [], []
        with source.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = _parse_line(raw, source, line_no)
                except DataError as exc:
                    if on_error == "raise":
                        raise
                    skipped.append(Skipped(f"{source}, line {line_no}", exc.message))
                    continue
                examples.append(record)
                metadata.append({"source": str(source), "line": line_no})
        return cls(examples, metadata, skipped=skipped)

    # -- checks ------------------------------------------------------------------------
    def validate(
        self,
        model: str | None = None,
        max_tokens_per_example: int | None = None,
        *,
        encoding: str | Encoder | TokenCounter | None = None,
        min_examples: int = 1,
        suggested_min_examples: int | None = None,
    ) -> ValidationReport:
        """Check the examples' structure and count their tokens for ``model``
        (see :mod:`finetunekit.examples.validation`). Fewer than ``min_examples`` is an
        error; a trainer adds its own rules in ``Trainer.check`` (the OpenAI one: 10).

        Problems are reported, not raised. ``encoding`` forces a token counter:
        ``"estimate"``, a tiktoken encoding name, an encoder object, or a ``TokenCounter``
        (the local backend's counts with the model's tokenizer and chat template:
        ``finetunekit.backends.local.tokens.chat_template_counter``).
        """
        report = validate_examples(
            self.examples,
            lines=[m.get("line") for m in self.metadata],
            model=model,
            max_tokens_per_example=max_tokens_per_example,
            encoding=encoding,
            min_examples=min_examples,
            suggested_min_examples=suggested_min_examples,
        )
        if self.skipped:
            report.warnings.append(_skipped_issue(self.skipped))
        return report


def as_example_set(examples: ExampleSet | Iterable[Mapping[str, Any]]) -> ExampleSet:
    """``examples`` itself if it is an ExampleSet, else a new one over its ``{"messages": ...}``
    dicts (what trainers accept: an ExampleSet or any sequence of such dicts)."""
    if isinstance(examples, ExampleSet):
        return examples
    if isinstance(examples, (str, bytes, Mapping)):
        raise TypeError(f"expected an ExampleSet or a sequence of example dicts, got {type(examples).__name__}")
    return ExampleSet(examples)


def _skipped_issue(skipped: list[Skipped]) -> Issue:
    shown = "; ".join(f"{s.where}: {s.reason}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return Issue(code="skipped_input", message=f"{len(skipped)} input(s) skipped with on_error='skip': {shown}{more}")


def _messages(example: Any, index: int, line: int | None) -> list[Mapping[str, Any]]:
    messages = example.get("messages") if isinstance(example, Mapping) else None
    if not isinstance(messages, list):
        raise DataError(f"example {index} has no 'messages' list", line=line)
    return [m for m in messages if isinstance(m, Mapping)]


_LINE_BREAKERS = (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _json_line(example: Any, index: int) -> bytes:
    try:
        text = json.dumps(example, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataError(f"example {index} cannot be written as JSON: {exc}") from exc
    # Legal unescaped in JSON, but line splitters (str.splitlines, some JSONL readers) break
    # lines at them: escape them so one record is always one line for every reader.
    for char, escape in _LINE_BREAKERS:
        text = text.replace(char, escape)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(
            f"example {index} holds a character UTF-8 cannot encode ({exc.object[exc.start:exc.end]!r}, "
            "a lone surrogate); fix the source text"
        ) from exc


def _parse_line(raw: bytes, source: Path, line_no: int) -> dict[str, Any]:
    raw = raw.rstrip(b"\r\n")
    if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # UTF-8 byte-order mark
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not valid UTF-8: byte {raw[exc.start]:#04x} at byte {exc.start + 1} (expected UTF-8 text)",
            path=source, line=line_no, column=exc.start + 1,
        ) from exc
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg} (expected one JSON object per line)",
                        path=source, line=line_no, column=exc.colno) from exc
    if not isinstance(record, dict):
        raise DataError(f'expected a JSON object like {{"messages": [...]}}, got {type(record).__name__}',
                        path=source, line=line_no)
    return record


def check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
