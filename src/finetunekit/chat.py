"""The ChatModel interface and conversation normalisation."""

from __future__ import annotations

import abc
from typing import Any, Mapping, Sequence, Union

from finetunekit.answer_cache import AnswerCache, request_key
from finetunekit.component import Component, ComponentOptions, option
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
    """Answers conversations. Subclasses set ``name`` and ``Options`` and implement ``generate``.

    Answers are cached on disk when the options have an ``answer_cache_dir`` (subclass
    :class:`ChatModel.Options` to get it): a rerun asks only for what is missing. The cache key
    is :meth:`cache_identity` plus the messages; override it when something besides the
    result-changing options changes an answer (model files, an endpoint).
    """

    class Options(ComponentOptions):
        """The answer cache every chat model can have."""

        answer_cache_dir: str | None = option(
            None, affects_result=False, pipeline="answer_cache_dir",
            description="Cache answers on disk here (keyed by the model's identity and the messages).",
        )

    def answer(self, conversations: Sequence[Conversation]) -> list[str]:
        """One answer per conversation, in the same order (cached ones are not asked again)."""
        if isinstance(conversations, str):
            raise ConfigError("answer() takes a list of conversations; wrap a single question in a list")
        batch = [to_messages(c, index) for index, c in enumerate(conversations)]
        if not batch:
            return []
        cache = self.answer_cache
        if cache is None:
            return self._generated(batch)
        requests = [self.cache_request(messages) for messages in batch]
        answers: list[str | None] = [cache.get(request) for request in requests]
        todo = [i for i, answer in enumerate(answers) if answer is None]
        if todo:
            for i, answer in zip(todo, self._generated([batch[i] for i in todo])):
                cache.put(requests[i], answer)
                answers[i] = answer
        return [answer or "" for answer in answers]

    def _generated(self, batch: list[list[Message]]) -> list[str]:
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
    def answer_cache(self) -> AnswerCache | None:
        """The on-disk answer cache, when the options name a directory."""
        directory = getattr(self.options, "answer_cache_dir", None)
        return AnswerCache(directory) if directory else None

    def cache_identity(self) -> dict[str, Any]:
        """What besides the messages changes an answer: by default the result-changing options."""
        options = self.options
        fields = type(options).result_fields() if isinstance(options, ComponentOptions) else None
        return options.model_dump(mode="json", include=fields, fallback=lambda v: f"<{type(v).__name__}>")

    def cache_request(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The cache description of one request (backend, model, :meth:`cache_identity`, messages)."""
        return request_key(self.name, self.model_label, self.cache_identity(), messages)

    @property
    def model_label(self) -> str:
        """A short label for reports (the model id by default)."""
        return str(getattr(self.options, "model", self.name))
