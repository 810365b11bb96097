"""A dry run of an OpenAI fine-tuning job: validate, count tokens, estimate the bill — send nothing."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

#: USD per 1M training tokens as published by OpenAI (check current pricing before relying on it).
TRAINING_PRICE_PER_MILLION = {
    "gpt-4o-mini-2024-07-18": 3.00,
    "gpt-4o-2024-08-06": 25.00,
    "gpt-4.1-2025-04-14": 25.00,
    "gpt-4.1-mini-2025-04-14": 5.00,
    "gpt-4.1-nano-2025-04-14": 1.50,
}
TOKENS_PER_MESSAGE = 4


def default_n_epochs(n_examples: int) -> int:
    """OpenAI's documented ``n_epochs="auto"`` rule: 3, raised so that examples × epochs ≥ 100
    (at most 25), lowered so that examples × epochs ≤ 25,000 (at least 1)."""
    if n_examples * 3 < 100:
        return min(25, math.ceil(100 / max(n_examples, 1)))
    if n_examples * 3 > 25_000:
        return max(1, 25_000 // n_examples)
    return 3


def estimate_tokens(example: Any) -> int:
    """An estimate of one example's tokens: ~4 characters per token plus per-message overhead."""
    return sum(math.ceil(len(str(m.get("content", ""))) / 4) + TOKENS_PER_MESSAGE
               for m in example.get("messages", [])) + 2


class DryRunReport(BaseModel):
    """What a job would cost, before anything is sent."""

    model: str
    ok: bool
    errors: list[str]
    n_examples: int
    tokens_per_epoch: int
    n_epochs: int
    billed_tokens: int
    price_per_million_tokens: float | None
    estimated_cost_usd: float | None
    token_counts_are_estimates: bool = True

    def __str__(self) -> str:
        cost = f"${self.estimated_cost_usd:,.2f}" if self.estimated_cost_usd is not None else "unknown price"
        status = "ok" if self.ok else f"{len(self.errors)} error(s): {'; '.join(self.errors[:3])}"
        return (f"{self.n_examples} examples, ~{self.tokens_per_epoch:,} tokens per epoch × {self.n_epochs} "
                f"epochs = ~{self.billed_tokens:,} billed tokens on {self.model}: {cost} ({status})")


def dry_run_report(examples: list[dict[str, Any]], errors: list[Any], *, model: str, n_epochs: Any,
                   price_per_million: float | None = None) -> DryRunReport:
    """Build the :class:`DryRunReport` of ``examples`` (already checked into ``errors``)."""
    tokens = sum(estimate_tokens(e) for e in examples)
    epochs = default_n_epochs(len(examples)) if n_epochs == "auto" else int(n_epochs)
    price = price_per_million if price_per_million is not None else TRAINING_PRICE_PER_MILLION.get(model)
    billed = tokens * epochs
    return DryRunReport(
        model=model, ok=not errors, errors=[str(e) for e in errors], n_examples=len(examples),
        tokens_per_epoch=tokens, n_epochs=epochs, billed_tokens=billed, price_per_million_tokens=price,
        estimated_cost_usd=round(billed / 1e6 * price, 4) if price is not None else None,
    )
