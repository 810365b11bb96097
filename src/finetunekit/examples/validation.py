"""Checks of chat fine-tuning data, after OpenAI's data-prep guidance, as a ``ValidationReport``.

Problems are collected, never raised: a report lists every error and warning with the
example's index (and file line when known), a code and a message, plus token statistics,
the default number of epochs and the billed-token estimate.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, computed_field

from finetunekit.examples.tokens import Encoder, TokenCounter, token_counter

TOP_LEVEL_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "tool_calls", "tool_call_id", "weight"})
ROLES = frozenset({"system", "user", "assistant", "tool", "function"})

MIN_EXAMPLES = 10  #: OpenAI rejects files with fewer examples (the OpenAI trainer's check)
SUGGESTED_MIN_EXAMPLES = 50  #: OpenAI suggests starting with 50 to 100
DEFAULT_TOKEN_LIMIT = 65_536  #: per-example limit of OpenAI's current fine-tunable models
TARGET_EPOCHS, MIN_EPOCHS, MAX_EPOCHS = 3, 1, 25
MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES = 100, 25_000


class Issue(BaseModel):
    """One problem: where (example index, file line), a stable code, and what is wrong."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    index: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = [f"example {self.index}"] if self.index is not None else []
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{', '.join(where) + ': ' if where else ''}[{self.code}] {self.message}"


class TokenStats(BaseModel):
    """Distribution of tokens per example (p95 by the nearest-rank method)."""

    min: int
    median: float
    p95: int
    max: int
    mean: float
    total: int

    @classmethod
    def of(cls, counts: Sequence[int]) -> TokenStats | None:
        """Statistics of ``counts``, or ``None`` when there are none."""
        if not counts:
            return None
        ordered = sorted(counts)
        n, mid = len(ordered), len(ordered) // 2
        median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        return cls(
            min=ordered[0], median=median, p95=ordered[math.ceil(0.95 * n) - 1], max=ordered[-1],
            mean=sum(ordered) / n, total=sum(ordered),
        )


class ValidationReport(BaseModel):
    """What :meth:`ExampleSet.validate` found. ``ok`` is true when there is no error."""

    n_examples: int
    model: str | None = None
    encoding: str
    tokens_estimated: bool
    token_note: str | None = None
    token_limit: int
    tokens: TokenStats | None = None
    assistant_tokens: TokenStats | None = None
    over_limit: list[int] = []
    epochs: int
    billed_tokens: int
    #: tokens billed per epoch: each example's count capped at ``token_limit`` (what is trained on)
    billed_tokens_per_epoch: int = 0
    errors: list[Issue] = []
    warnings: list[Issue] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def to_text(self, max_per_code: int = 5) -> str:
        """A readable summary; at most ``max_per_code`` issues are listed for each code."""
        status = "OK" if self.ok else f"{len(self.errors)} error(s)"
        lines = [f"Validation: {status}, {len(self.warnings)} warning(s); {self.n_examples} examples"
                 + (f" for model {self.model}" if self.model else "")]
        approx = "~" if self.tokens_estimated else ""
        lines.append("Tokens (estimated, ~4 characters per token):" if self.tokens_estimated
                     else f"Tokens ({self.encoding}):")
        if self.token_note:
            lines.append(f"  note: {self.token_note}")
        for label, stats in (("per example", self.tokens), ("assistant", self.assistant_tokens)):
            if stats is not None:
                lines.append(f"  {label}: min {approx}{stats.min}, median {approx}{stats.median:g}, "
                             f"p95 {approx}{stats.p95}, max {approx}{stats.max}, total {approx}{stats.total}")
        lines.append(f"  over the {self.token_limit:,}-token limit (truncated): {len(self.over_limit)}")
        lines.append(f"Default epochs: {self.epochs}; billed tokens: {approx}{self.billed_tokens:,}")
        for title, issues in (("Errors", self.errors), ("Warnings", self.warnings)):
            if issues:
                lines.append(f"{title}:")
                lines.extend(_grouped(issues, max_per_code))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _grouped(issues: list[Issue], max_per_code: int) -> list[str]:
    by_code: dict[str, list[Issue]] = defaultdict(list)
    for issue in issues:
        by_code[issue.code].append(issue)
    out = []
    for code, group in by_code.items():
        out.append(f"  {code}: {len(group)}")
        out.extend(f"    {issue}" for issue in group[:max_per_code])
        if len(group) > max_per_code:
            out.append(f"    ... and {len(group) - max_per_code} more")
    return out


def default_epochs(n_examples: int) -> int:
    """OpenAI's default epochs: 3, raised (≤ 25) so examples × epochs ≥ 100, or lowered (≥ 1)
    so examples × epochs ≤ 25,000. (OpenAI's cookbook rounds the raise down; this keeps the
    stated ≥ 100 rule and rounds up.)"""
    if n_examples <= 0:
        return 0
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_EPOCHS, math.ceil(MIN_TARGET_EXAMPLES / n_examples))
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def check_example(example: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(errors, warnings)`` of one example, each a list of ``(code, message)``."""
    if not isinstance(example, Mapping):
        return [("data_type", f"an example must be a JSON object, got {type(example).__name__}")], []
    if "messages" not in example:
        if "prompt" in example or "completion" in example:
            return [("prompt_completion_format",
                     "this is a prompt/completion record (legacy completions format); chat models need "
                     '{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}')], []
        return [("missing_messages_list", f"no 'messages' key (keys: {sorted(map(str, example))})")], []
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    unknown = sorted(str(k) for k in example if k not in TOP_LEVEL_KEYS)
    if unknown:
        errors.append(("unknown_key", f"unknown key(s) {unknown}; allowed: {sorted(TOP_LEVEL_KEYS)}"))
    messages = example["messages"]
    if not isinstance(messages, list) or not messages:
        errors.append(("wrong_type", f"'messages' must be a non-empty list, got {messages!r:.60}"))
        return errors, warnings
    for position, message in enumerate(messages):
        _check_message(position, message, errors, warnings)
    roles = [m.get("role") for m in messages if isinstance(m, Mapping)]
    if "assistant" not in roles:
        errors.append(("example_missing_assistant_message", "no assistant message: nothing to learn"))
    elif roles[-1] != "assistant":
        warnings.append(("trailing_messages", "messages after the last assistant message are not trained on"))
    if "user" not in roles:
        warnings.append(("missing_user_message", "no user message"))
    return errors, warnings


def _check_message(position: int, message: Any, errors: list, warnings: list) -> None:
    where = f"message {position}"
    if not isinstance(message, Mapping):
        errors.append(("data_type", f"{where} must be a JSON object, got {type(message).__name__}"))
        return
    if "role" not in message:
        errors.append(("message_missing_key", f"{where} has no 'role'"))
    unknown = sorted(str(k) for k in message if k not in MESSAGE_KEYS)
    if unknown:
        errors.append(("message_unrecognized_key", f"{where} has unknown key(s) {unknown}"))
    role = message.get("role")
    if "role" in message and role not in ROLES:
        errors.append(("unrecognized_role", f"{where} has role {role!r}; expected one of {sorted(ROLES)}"))
    content = message.get("content")
    if content is None:
        if not (message.get("function_call") or message.get("tool_calls")):
            errors.append(("missing_content", f"{where} ({role}) has no content"))
    elif isinstance(content, str):
        if not content.strip():
            warnings.append(("empty_content", f"{where} ({role}) has empty content"))
    elif not (isinstance(content, list) and all(isinstance(p, Mapping) and "type" in p for p in content)):
        errors.append(("wrong_type", f"{where} content must be a string or a list of content parts, "
                                     f"got {type(content).__name__}"))
    if "name" in message and not isinstance(message["name"], str):
        errors.append(("wrong_type", f"{where} 'name' must be a string"))
    if "weight" in message and message["weight"] not in (0, 1):
        errors.append(("invalid_weight", f"{where} weight must be 0 or 1, got {message['weight']!r}"))


def validate_examples(
    examples: Sequence[Any],
    *,
    lines: Sequence[int | None] | None = None,
    model: str | None = None,
    max_tokens_per_example: int | None = None,
    encoding: str | Encoder | TokenCounter | None = None,
    min_examples: int = 1,
    suggested_min_examples: int | None = None,
) -> ValidationReport:
    """Check ``examples`` (``lines[i]`` is example i's file line, if any) and report on them.

    Fewer than ``min_examples`` is an error and fewer than ``suggested_min_examples`` a
    warning: a backend passes its own (the OpenAI trainer: 10 and 50, :data:`MIN_EXAMPLES`).
    """
    counter = token_counter(model, encoding)
    limit = max_tokens_per_example or DEFAULT_TOKEN_LIMIT
    errors: list[Issue] = []
    warnings: list[Issue] = []
    totals: list[int] = []
    assistant: list[int] = []
    over: list[int] = []
    seen: dict[bytes, int] = {}
    for index, example in enumerate(examples):
        line = lines[index] if lines is not None else None
        bad, dubious = check_example(example)
        errors.extend(Issue(code=c, message=m, index=index, line=line) for c, m in bad)
        warnings.extend(Issue(code=c, message=m, index=index, line=line) for c, m in dubious)
        if not isinstance(example, Mapping) or not isinstance(example.get("messages"), list):
            continue
        total, answer = counter.count_messages(example["messages"])
        totals.append(total)
        assistant.append(answer)
        if total > limit:
            over.append(index)
            warnings.append(Issue(code="over_token_limit", index=index, line=line,
                                  message=f"{total} tokens > limit {limit}; it will be truncated"))
        key = hashlib.blake2b(json.dumps(example, sort_keys=True, default=str).encode(), digest_size=16).digest()
        if key in seen:
            warnings.append(Issue(code="duplicate_example", index=index, line=line,
                                  message=f"same as example {seen[key]}"))
        else:
            seen[key] = index
    n = len(examples)
    if n < min_examples:
        errors.append(Issue(code="too_few_examples", message=f"{n} examples; fine-tuning needs at least {min_examples}"))
    elif suggested_min_examples is not None and n < suggested_min_examples:
        warnings.append(Issue(code="few_examples",
                              message=f"{n} examples; at least {suggested_min_examples} are suggested"))
    epochs = default_epochs(n)
    return ValidationReport(
        n_examples=n, model=model, encoding=counter.name, tokens_estimated=counter.estimated,
        token_note=counter.note, token_limit=limit, tokens=TokenStats.of(totals),
        assistant_tokens=TokenStats.of(assistant), over_limit=over, epochs=epochs,
        billed_tokens=sum(min(limit, t) for t in totals) * epochs,
        billed_tokens_per_epoch=sum(min(limit, t) for t in totals), errors=errors, warnings=warnings,
    )
