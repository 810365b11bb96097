"""A dry run of an OpenAI fine-tuning job: validate, count tokens, estimate the bill — send nothing."""

from __future__ import annotations

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
    token_counts_are_estimates: bool

    def __str__(self) -> str:
        cost = f"${self.estimated_cost_usd:,.2f}" if self.estimated_cost_usd is not None else "unknown price"
        status = "ok" if self.ok else f"{len(self.errors)} error(s): {'; '.join(self.errors[:3])}"
        approx = "~" if self.token_counts_are_estimates else ""
        return (f"{self.n_examples} examples, {approx}{self.tokens_per_epoch:,} tokens per epoch × "
                f"{self.n_epochs} epochs = {approx}{self.billed_tokens:,} billed tokens on {self.model}: "
                f"{cost} ({status})")


def dry_run_report(report: Any, errors: list[str], *, n_epochs: Any,
                   price_per_million: float | None = None) -> DryRunReport:
    """The :class:`DryRunReport` from an ``ExampleSet.validate`` report and the job's ``n_epochs``."""
    tokens = report.tokens.total if report.tokens is not None else 0
    epochs = report.epochs if n_epochs == "auto" else int(n_epochs)
    model = report.model or ""
    price = price_per_million if price_per_million is not None else TRAINING_PRICE_PER_MILLION.get(model)
    billed = tokens * epochs
    return DryRunReport(
        model=model, ok=not errors, errors=errors, n_examples=report.n_examples, tokens_per_epoch=tokens,
        n_epochs=epochs, billed_tokens=billed, price_per_million_tokens=price,
        estimated_cost_usd=round(billed / 1e6 * price, 4) if price is not None else None,
        token_counts_are_estimates=report.tokens_estimated,
    )
