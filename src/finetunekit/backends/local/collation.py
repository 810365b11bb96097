"""Chat examples → token ids with labels only on assistant tokens, and a dynamic-padding collator.

Each conversation is rendered with the tokenizer's own chat template. The character span of
every assistant turn is found by rendering the conversation up to that turn (with the
generation prompt) and through it; tokens inside a span — the answer and its end-of-turn
token — get their own id as label, all others get ``-100``. Nothing depends on the template's
wording, and nothing reads labels back from ``input_ids == pad``, so a pad token equal to EOS
does no harm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from finetunekit.errors import DataError

IGNORE_INDEX = -100


@dataclass
class TokenizedExample:
    """One training example: ids, labels (``-100`` = not trained on), and what happened to it."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def trainable_tokens(self) -> int:
        """How many tokens carry a label."""
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass
class TokenizationReport:
    """Counts over a tokenized set: nothing is dropped silently."""

    examples: int = 0
    tokens: int = 0
    trainable_tokens: int = 0
    truncated: int = 0
    no_trainable_tokens: int = 0
    max_length: int = 0
    truncated_indices: list[int] = field(default_factory=list)
    no_trainable_indices: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (indices capped at 50 each)."""
        return {
            "examples": self.examples,
            "tokens": self.tokens,
            "trainable_tokens": self.trainable_tokens,
            "truncated": self.truncated,
            "no_trainable_tokens": self.no_trainable_tokens,
            "max_length": self.max_length,
            "truncated_indices": self.truncated_indices[:50],
            "no_trainable_indices": self.no_trainable_indices[:50],
        }

    def warnings(self) -> list[str]:
        """Human-readable warnings for truncated examples and examples left with nothing to learn."""
        out = []
        if self.truncated:
            out.append(
                f"{self.truncated} of {self.examples} examples were longer than max_length={self.max_length} "
                f"tokens and were truncated (first indices: {self.truncated_indices[:10]}); "
                "raise max_length or shorten the answers"
            )
        if self.no_trainable_tokens:
            out.append(
                f"{self.no_trainable_tokens} of {self.examples} examples have no assistant token left to train on "
                f"(indices: {self.no_trainable_indices[:10]}); they contribute nothing to the loss"
            )
        return out


def messages_of(example: Any, index: int) -> list[dict[str, str]]:
    """The ``messages`` list of one example, checked."""
    messages = example.get("messages") if isinstance(example, Mapping) else None
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise DataError("expected a dict with a non-empty 'messages' list", line=index + 1, field="messages")
    for m in messages:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(
                f"each message needs string 'role' and 'content', got {m!r}", line=index + 1, field="messages"
            )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]], index: int = 0) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the ``[start, end)`` character spans of its assistant turns.

    A span runs from the end of the generation prompt to the end of the turn, end-of-turn token
    included (trailing whitespace after it is left out).
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (text.startswith(through) and through.startswith(before)):
            raise DataError(
                "the chat template does not render this conversation turn by turn as prefixes of each other, "
                "so assistant tokens cannot be located",
                line=index + 1,
                field=f"messages[{i}]",
            )
        end = len(through.rstrip())
        spans.append((len(before), end))
    return text, spans


def tokenize_example(tokenizer: Any, messages: list[dict[str, str]], max_length: int, index: int = 0) -> TokenizedExample:
    """Token ids and labels for one conversation, truncated to ``max_length`` tokens."""
    text, spans = assistant_spans(tokenizer, messages, index)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = []
    for token_id, (start, end) in zip(ids, encoded["offset_mapping"]):
        inside = any(s <= start and end <= e and end > start for s, e in spans)
        labels.append(token_id if inside else IGNORE_INDEX)
    truncated = len(ids) > max_length
    return TokenizedExample(ids[:max_length], labels[:max_length], truncated)


def tokenize_examples(
    tokenizer: Any, examples: Iterable[Any], max_length: int | str, *, cap: int | None = None
) -> tuple[list[TokenizedExample], TokenizationReport]:
    """Tokenize every example (``{"messages": [...]}`` dicts) and count what was cut or left empty.

    ``max_length="auto"``: the longest example's length, at most ``cap`` — nothing is cut unless
    an example is longer than the cap (which is then counted as truncated)."""
    if max_length == "auto":
        examples = list(examples)
        full = [tokenize_example(tokenizer, messages_of(e, i), 10**9, i) for i, e in enumerate(examples)]
        max_length = min(max((len(item.input_ids) for item in full), default=8), cap or 10**9)
    report = TokenizationReport(max_length=int(max_length))
    out = []
    for index, example in enumerate(examples):
        item = tokenize_example(tokenizer, messages_of(example, index), int(max_length), index)
        report.examples += 1
        report.tokens += len(item.input_ids)
        report.trainable_tokens += item.trainable_tokens
        if item.truncated:
            report.truncated += 1
            report.truncated_indices.append(index)
        if item.trainable_tokens == 0:
            report.no_trainable_tokens += 1
            report.no_trainable_indices.append(index)
        out.append(item)
    return out, report


class ChatDataset:
    """A list-backed torch-style dataset of tokenized examples (items are dicts of lists)."""

    def __init__(self, items: Sequence[TokenizedExample]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        item = self.items[index]
        return {"input_ids": item.input_ids, "labels": item.labels}


@dataclass
class PaddingCollator:
    """Pads a batch to its longest example (``pad_to`` forces a fixed length, for baselines)."""

    pad_token_id: int
    pad_to: int | None = None
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[Mapping[str, list[int]]]) -> dict[str, Any]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        width = self.pad_to or longest
        if self.pad_to_multiple_of and not self.pad_to:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, feature in enumerate(features):
            n = len(feature["input_ids"])
            ids[row, :n] = torch.tensor(feature["input_ids"], dtype=torch.long)
            labels[row, :n] = torch.tensor(feature["labels"], dtype=torch.long)
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
