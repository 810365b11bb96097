"""What OpenAI work would cost, before anything is sent: a fine-tuning job's dry run, and the
answers of an evaluation (at half price through the Batch API)."""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import BaseModel

#: USD per 1M training tokens as published by OpenAI (check current pricing before relying on it).
TRAINING_PRICE_PER_MILLION = {
    "gpt-4o-mini-2024-07-18": 3.00,
    "gpt-4o-2024-08-06": 25.00,
    "gpt-4.1-2025-04-14": 25.00,
    "gpt-4.1-mini-2025-04-14": 5.00,
    "gpt-4.1-nano-2025-04-14": 1.50,
}


#: USD per 1M (input, output) tokens of chat completions as published by OpenAI, standard
#: tier (check current pricing before relying on it); keys are model ids or their prefixes.
CHAT_PRICE_PER_MILLION = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
}
#: the same for fine-tuned models (``ft:<base>:...``), keyed by the base model
FINE_TUNED_CHAT_PRICE_PER_MILLION = {
    "gpt-4o-mini-2024-07-18": (0.30, 1.20),
    "gpt-4o-2024-08-06": (3.75, 15.00),
    "gpt-4.1-2025-04-14": (3.00, 12.00),
    "gpt-4.1-mini-2025-04-14": (0.80, 3.20),
    "gpt-4.1-nano-2025-04-14": (0.20, 0.80),
}
#: the Batch API bills half the standard price
BATCH_PRICE_FACTOR = 0.5


def chat_price_per_million(model: str) -> tuple[float, float] | None:
    """Standard ``(input, output)`` USD per 1M tokens of ``model`` (a fine-tuned ``ft:`` id is
    priced by its base model), or ``None`` when the tables do not know it."""
    if model.startswith("ft:"):
        return FINE_TUNED_CHAT_PRICE_PER_MILLION.get(model.split(":")[1])
    known = [key for key in CHAT_PRICE_PER_MILLION if model == key or model.startswith(key + "-")]
    return CHAT_PRICE_PER_MILLION[max(known, key=len)] if known else None


class AnswerCostEstimate(BaseModel):
    """What answering some questions would cost at most (every answer ``max_tokens`` long)."""

    model: str
    batch: bool
    n_requests: int
    input_tokens: int
    max_output_tokens: int | None
    price_per_million_tokens: tuple[float, float] | None
    estimated_cost_usd: float | None
    token_counts_are_estimates: bool

    def __str__(self) -> str:
        cost = f"at most ${self.estimated_cost_usd:,.4f}" if self.estimated_cost_usd is not None else "unknown price"
        output = f"{self.max_output_tokens:,}" if self.max_output_tokens is not None else "unbounded"
        approx = "~" if self.token_counts_are_estimates else ""
        how = "through the Batch API (half price)" if self.batch else "online"
        return (f"{self.n_requests} request(s) to {self.model} {how}: {approx}{self.input_tokens:,} input tokens, "
                f"at most {output} output tokens: {cost}")


def answer_cost_estimate(conversations: Sequence[Sequence[Any]], *, model: str, max_tokens: int | None,
                         batch: bool, price_per_million: tuple[float, float] | None = None) -> AnswerCostEstimate:
    """The :class:`AnswerCostEstimate` of sending ``conversations`` (lists of message dicts) to
    ``model``: input tokens counted as the fine-tuning data checks count them, output bounded by
    ``max_tokens``, the price halved with ``batch``."""
    from finetunekit.examples.tokens import token_counter

    counter = token_counter(model.split(":")[1] if model.startswith("ft:") else model)
    input_tokens = sum(counter.count_messages(list(messages))[0] for messages in conversations)
    output_tokens = None if max_tokens is None else max_tokens * len(conversations)
    price = price_per_million if price_per_million is not None else chat_price_per_million(model)
    cost = None
    if price is not None and output_tokens is not None:
        factor = BATCH_PRICE_FACTOR if batch else 1.0
        cost = round((input_tokens * price[0] + output_tokens * price[1]) / 1e6 * factor, 6)
    return AnswerCostEstimate(
        model=model, batch=batch, n_requests=len(conversations), input_tokens=input_tokens,
        max_output_tokens=output_tokens, price_per_million_tokens=price, estimated_cost_usd=cost,
        token_counts_are_estimates=counter.estimated,
    )


class DryRunReport(BaseModel):
    """What a job would cost, before anything is sent."""

    model: str
    ok: bool
    errors: list[str]
    n_examples: int
    tokens_per_epoch: int
    truncated_examples: int = 0
    n_epochs: int
    billed_tokens: int
    price_per_million_tokens: float | None
    estimated_cost_usd: float | None
    token_counts_are_estimates: bool

    def __str__(self) -> str:
        cost = f"${self.estimated_cost_usd:,.2f}" if self.estimated_cost_usd is not None else "unknown price"
        status = "ok" if self.ok else f"{len(self.errors)} error(s): {'; '.join(self.errors[:3])}"
        approx = "~" if self.token_counts_are_estimates else ""
        cut = f" ({self.truncated_examples} truncated at the token limit)" if self.truncated_examples else ""
        return (f"{self.n_examples} examples{cut}, {approx}{self.tokens_per_epoch:,} tokens per epoch × "
                f"{self.n_epochs} epochs = {approx}{self.billed_tokens:,} billed tokens on {self.model}: "
                f"{cost} ({status})")


def dry_run_report(report: Any, errors: list[str], *, n_epochs: Any,
                   price_per_million: float | None = None) -> DryRunReport:
    """The :class:`DryRunReport` from an ``ExampleSet.validate`` report and the job's ``n_epochs``."""
    tokens = report.billed_tokens_per_epoch  # examples over the limit count as truncated, as in validation.txt
    epochs = report.epochs if n_epochs == "auto" else int(n_epochs)
    model = report.model or ""
    price = price_per_million if price_per_million is not None else TRAINING_PRICE_PER_MILLION.get(model)
    billed = tokens * epochs
    return DryRunReport(
        model=model, ok=not errors, errors=errors, n_examples=report.n_examples, tokens_per_epoch=tokens,
        truncated_examples=len(report.over_limit), n_epochs=epochs, billed_tokens=billed,
        price_per_million_tokens=price,
        estimated_cost_usd=round(billed / 1e6 * price, 4) if price is not None else None,
        token_counts_are_estimates=report.tokens_estimated,
    )
