"""Token counts of chat examples for a local model: its own tokenizer and chat template.

A conversation counts the tokens of the text its chat template renders (what the local
trainer feeds the model, special tokens included); its assistant tokens are those the trainer
puts a loss on (each answer and its end-of-turn token). So ``ExampleSet.validate`` and the
local trainer's ``check`` report exactly what training will see, not a characters-per-token guess.
"""

from __future__ import annotations

from typing import Any

import pluggy

from finetunekit.errors import DataError, MissingDependencyError
from finetunekit.examples.tokens import TokenCounter, token_counter

#: A length no example reaches: counting never truncates.
NO_LIMIT = 10**9


class ChatTemplateCounter(TokenCounter):
    """Counts with a ``transformers`` tokenizer and its chat template (exact, not estimated)."""

    def __init__(self, tokenizer: Any, model: str) -> None:
        super().__init__(None)
        self.tokenizer = tokenizer
        self.model = model

    @property
    def name(self) -> str:
        """``chat template of MODEL``."""
        return f"chat template of {self.model}"

    @property
    def estimated(self) -> bool:
        """Always False: these are the tokenizer's own counts."""
        return False

    def count(self, text: str) -> int:
        """Tokens of ``text`` alone (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_messages(self, messages: list[Any]) -> tuple[int, int]:
        """``(total, assistant)``: the rendered conversation's tokens and those trained on.

        A conversation the chat template cannot render as text (non-string contents, tool
        calls) is counted message by message instead; the validator reports its structure.
        """
        from finetunekit.backends.local.collation import messages_of, tokenize_example

        try:
            item = tokenize_example(self.tokenizer, messages_of({"messages": messages}, 0), NO_LIMIT)
        except DataError:
            return super().count_messages(messages)
        return len(item.input_ids), item.trainable_tokens


def chat_template_counter(
    model: str,
    *,
    plugins: pluggy.PluginManager | None = None,
    cache_dir: str | None = None,
    allow_hub: bool = False,
) -> TokenCounter:
    """The exact counter for the local ``model`` (a registered name, directory or HF id).

    Without ``transformers`` (or what converting the model needs) it falls back to the
    estimate, whose note says why; a model that cannot be found is an error, as in training.
    """
    from finetunekit.backends.local.sources import resolve_model

    try:
        from finetunekit.backends.local.loading import load_tokenizer

        resolved = resolve_model(model, plugins=plugins, cache_dir=cache_dir)
        tokenizer = load_tokenizer(resolved, allow_hub=allow_hub)
    except (MissingDependencyError, ImportError) as exc:
        counter = token_counter(model)
        counter.note = f"{counter.note}; the exact counts need the local backend ({exc})"
        return counter
    return ChatTemplateCounter(tokenizer, model)
