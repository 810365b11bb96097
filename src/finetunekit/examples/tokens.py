"""Token counts of chat examples: tiktoken's encoding for the target model, or an honest estimate.

With tiktoken installed (``pip install 'finetunekit[tokens]'``) and its encoding file at hand
(downloaded once, or in ``TIKTOKEN_CACHE_DIR``), counts are exact for an OpenAI target model's
encoding. Otherwise -- and always for a model that is not OpenAI's (e.g. a local SmolLM2, whose
tokenizer is not tiktoken's) -- they are estimated at about four characters per token, and the
counter says so (``estimated=True`` and a ``note``) so no report passes an estimate off as a count.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, Mapping, Protocol

#: Characters per token assumed when no tokenizer is available (English prose averages ~4).
CHARS_PER_TOKEN = 4
#: Per-message and per-reply overheads of the chat format, as in OpenAI's data-prep guidance.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_REPLY = 3

#: Model-name prefixes whose models use ``o200k_base`` (used when tiktoken cannot tell).
O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
FALLBACK_ENCODING = "cl100k_base"
ESTIMATE = "estimate"
#: Names of OpenAI models (tiktoken's encodings apply): gpt-*, chatgpt-*, o1/o3/o4..., davinci, babbage.
OPENAI_MODEL = re.compile(r"(?:gpt-|chatgpt-|o\d+(?:-|$)|(?:davinci|babbage)(?:-|$))", re.IGNORECASE)


class Encoder(Protocol):
    """What a tokenizer must offer: a ``name`` and ``encode_ordinary(text) -> list[int]``."""

    name: str

    def encode_ordinary(self, text: str) -> list[int]:
        """The token ids of ``text``, special-token strings (``<|endoftext|>``) encoded as plain text."""
        ...


def _base_model(model: str) -> str:
    """``model`` without a fine-tuned id's wrapping: ``ft:gpt-4o-mini:org::abc`` -> ``gpt-4o-mini``."""
    return model.split(":")[1] if model.startswith("ft:") else model


def is_openai_model(model: str) -> bool:
    """True for an OpenAI model name (or a fine-tuned id of one), whose tokenizer tiktoken has."""
    return OPENAI_MODEL.match(_base_model(model)) is not None


def encoding_name_for(model: str | None) -> str | None:
    """The tiktoken encoding of ``model``: ``o200k_base`` for the gpt-4o family, else ``cl100k_base``.

    Fine-tuned ids (``ft:gpt-4o-mini-2024-07-18:org::abc``) count as their base model; an
    OpenAI model tiktoken does not know yet (or ``None``: no model named) falls back to
    ``cl100k_base``. A model that is not OpenAI's gets ``None``: no tiktoken encoding fits it.
    """
    if not model:
        return FALLBACK_ENCODING
    if not is_openai_model(model):
        return None
    base = _base_model(model)
    try:
        import tiktoken

        return tiktoken.encoding_name_for_model(base)
    except (ImportError, KeyError):
        pass
    return "o200k_base" if base.lower().startswith(O200K_PREFIXES) else FALLBACK_ENCODING


class TokenCounter:
    """Counts tokens with a tokenizer, or estimates them when ``encoder`` is ``None``."""

    def __init__(self, encoder: Encoder | None, *, note: str | None = None) -> None:
        self.encoder = encoder
        self.note = note

    @property
    def name(self) -> str:
        """The encoding's name, or ``"estimate"``."""
        return self.encoder.name if self.encoder is not None else ESTIMATE

    @property
    def estimated(self) -> bool:
        """True when counts are the ~4-characters-per-token estimate, not a tokenizer's."""
        return self.encoder is None

    def count(self, text: str) -> int:
        """Tokens in ``text`` (special-token strings count as ordinary text)."""
        if self.encoder is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        return len(self.encoder.encode_ordinary(text))

    def count_messages(self, messages: list[Any]) -> tuple[int, int]:
        """``(total, assistant)`` tokens of a conversation, with the chat format's overheads.

        Follows OpenAI's data-prep guidance: 3 tokens per message, every string value
        encoded, 1 more per ``name``, 3 for the reply primer. Non-dict messages are skipped
        (the validator reports them).
        """
        total, assistant = TOKENS_PER_REPLY, 0
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if key == "weight":
                    continue
                tokens = self.count(_text_of(value))
                total += tokens + (TOKENS_PER_NAME if key == "name" else 0)
                if message.get("role") == "assistant" and key != "role":
                    assistant += tokens
        return total, assistant


def _text_of(value: Any) -> str:
    """The text a message value contributes: strings as they are, text parts of content
    lists joined, anything else (tool calls) as its JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(p, Mapping) for p in value):
        texts = [p.get("text") for p in value]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    return json.dumps(value, ensure_ascii=False, default=str)


def token_counter(model: str | None = None, encoding: str | Encoder | TokenCounter | None = None) -> TokenCounter:
    """The best counter available for ``model``.

    ``encoding`` overrides the choice: ``"estimate"`` forces the estimate, a name such as
    ``"o200k_base"`` picks a tiktoken encoding, an encoder object is used as it is, and a
    ``TokenCounter`` (e.g. the local backend's chat-template counter) counts by itself.
    """
    if isinstance(encoding, TokenCounter):
        return encoding
    if encoding is not None and not isinstance(encoding, str):
        return TokenCounter(encoding)
    if encoding == ESTIMATE:
        return TokenCounter(None, note="token counts estimated (~4 characters per token), as requested")
    name = encoding or encoding_name_for(model)
    if name is None:
        return TokenCounter(None, note=(
            f"token counts estimated (~4 characters per token): {model!r} is not an OpenAI model, so "
            "tiktoken's encodings do not fit its tokenizer (pass encoding= to pick one anyway)"
        ))
    encoder, problem = _load_encoding(name)
    if encoder is None:
        return TokenCounter(None, note=f"token counts estimated (~4 characters per token): {problem}")
    return TokenCounter(encoder)


@functools.lru_cache(maxsize=8)
def _load_encoding(name: str) -> tuple[Any, str | None]:
    """tiktoken's encoding ``name`` or ``(None, why not)``; a failure is remembered, not retried."""
    try:
        import tiktoken
    except ImportError:
        return None, "tiktoken is not installed (pip install 'finetunekit[tokens]')"
    try:
        return tiktoken.get_encoding(name), None
    except Exception as exc:  # noqa: BLE001 - tiktoken fetches files over the network on first use
        return None, (
            f"tiktoken could not load encoding {name!r} ({type(exc).__name__}); it downloads the "
            "file on first use, or reads it from TIKTOKEN_CACHE_DIR"
        )
