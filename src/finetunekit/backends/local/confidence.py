"""The local chat model's confidence in a greedy answer: the mean log-probability of its tokens.

Greedy decoding records, at every step, the log-probability of the token it picks (the largest
log-softmax value): :mod:`~finetunekit.backends.local.decoding` as it decodes, and with
``transformers``' ``generate``, the logits processor :class:`GreedyLogProbs`. An answer's confidence is the
mean of those values over its first ``n_tokens`` tokens — starting after the first occurrence of
``after`` in the answer when given (e.g. the answer format's fixed opening, whose words are
copied from the question and say nothing about what the model knows).
"""

from __future__ import annotations

from typing import Any, Sequence


class GreedyLogProbs:
    """A ``transformers`` logits processor that records each step's greedy log-probability per row."""

    def __init__(self) -> None:
        self.steps: list[Any] = []  # one tensor of shape (batch,) per generated token

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self.steps.append(torch.log_softmax(scores.float(), dim=-1).max(dim=-1).values.cpu())
        return scores

    def row(self, row: int, n_tokens: int) -> list[float]:
        """The log-probabilities of row ``row``'s first ``n_tokens`` generated tokens."""
        return [float(step[row]) for step in self.steps[:n_tokens]]


def answer_length(token_ids: Sequence[int], stop_ids: Sequence[int]) -> int:
    """How many of the generated ``token_ids`` belong to the answer (up to the first stop token)."""
    stops = set(stop_ids)
    for position, token in enumerate(token_ids):
        if token in stops:
            return position
    return len(token_ids)


def start_after(tokenizer: Any, token_ids: Sequence[int], after: str | None) -> int:
    """The index of the first answer token after the first occurrence of ``after`` (0 if absent)."""
    if not after:
        return 0
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    found = text.find(after)
    if found < 0:
        return 0
    end = found + len(after)
    for position in range(1, len(token_ids) + 1):
        if len(tokenizer.decode(token_ids[:position], skip_special_tokens=True)) >= end:
            return position
    return len(token_ids)


def confidence(log_probs: Sequence[float], start: int, n_tokens: int) -> float:
    """The mean of ``log_probs[start:start + n_tokens]`` (all of them when that span is empty)."""
    window = list(log_probs[start : start + n_tokens]) or list(log_probs)
    return sum(window) / len(window) if window else 0.0
