"""The ChatModel interface and conversation normalisation."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence, Union

from finetunekit import distributed
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


#: What a chat model says instead of an answer it is not confident of (``abstain_below``).
DEFAULT_REFUSAL = "I don't know that product: it is not in the catalogue I was trained on."


#: Options applied to an answer after it was generated (and cached): not part of the cache key.
ANSWER_POLICY = frozenset({"abstain_below", "refusal"})


@dataclass(frozen=True)
class ScoredAnswer:
    """An answer, the model's confidence in it (``None``: the backend gives none), and whether
    it was replaced by the refusal because that confidence was below the threshold."""

    text: str
    confidence: float | None = None
    abstained: bool = False


class ChatModel(Component, abc.ABC):
    """Answers conversations. Subclasses set ``name`` and ``Options`` and implement ``generate``
    (or ``generate_scored``, to also give a confidence per answer).

    Answers are cached on disk when the options have an ``answer_cache_dir`` (subclass
    :class:`ChatModel.Options` to get it): a rerun asks only for what is missing. The cache key
    is :meth:`cache_identity` plus the messages; override it when something besides the
    result-changing options changes an answer (model files, an endpoint).

    With ``abstain_below`` set, an answer whose confidence is below it is replaced by
    ``refusal``: the model says it does not know instead of inventing (the pipeline calibrates
    the threshold on held-out products).
    """

    #: Under several processes answering together (:func:`finetunekit.distributed.split_work`):
    #: True, each process generates its share (local compute); False, rank 0 asks for every
    #: answer and sends them to the others (a hosted API, where more processes add nothing).
    split_answers: ClassVar[bool] = True

    class Options(ComponentOptions):
        """The answer cache and confidence-based abstention every chat model can have."""

        answer_cache_dir: str | None = option(
            None, affects_result=False, pipeline="answer_cache_dir",
            description="Cache answers on disk here (keyed by the model's identity and the messages).",
        )
        abstain_below: float | None = option(
            None, description="Answer `refusal` instead when the answer's confidence is below this "
            "(needs a backend that scores its answers; the pipeline calibrates it).",
        )
        refusal: str = option(DEFAULT_REFUSAL, description="What the model says when it abstains.")

    def release(self) -> None:
        """Free what this model holds between answers (e.g. loaded weights); a later answer takes it
        again. The evaluator calls it once the model has answered every question. Here: nothing."""

    def answer(self, conversations: Sequence[Conversation]) -> list[str]:
        """One answer per conversation, in the same order (cached ones are not asked again)."""
        return [scored.text for scored in self.answer_scored(conversations)]

    def answer_scored(self, conversations: Sequence[Conversation]) -> list[ScoredAnswer]:
        """Like :meth:`answer`, with each answer's confidence and whether the model abstained."""
        if isinstance(conversations, str):
            raise ConfigError("answer() takes a list of conversations; wrap a single question in a list")
        batch = [to_messages(c, index) for index, c in enumerate(conversations)]
        if not batch:
            return []
        threshold = getattr(self.options, "abstain_below", None)
        cache = self.answer_cache
        requests = self.cache_requests(batch) if cache is not None else []

        def cached() -> list[tuple[str, float | None] | None]:
            entries = [cache.get_entry(r) for r in requests] if cache else [None] * len(batch)
            if threshold is not None:  # a cached answer without a score cannot be judged: ask again
                entries = [entry if entry is None or entry[1] is not None else None for entry in entries]
            return entries

        # inside distributed.split_work() (several processes answering together) rank 0 reads and
        # writes the cache, and each process generates its share of what is missing (or rank 0 all of it)
        split = distributed.work_is_split()
        found = distributed.from_main(cached) if split else cached()
        todo = [i for i, entry in enumerate(found) if entry is None]
        if todo:
            todo_batch = [batch[i] for i in todo]
            if not split:
                generated = self._generated(todo_batch)
            elif self.split_answers:
                generated = distributed.split_map(self._generated, todo_batch)
            else:
                generated = distributed.from_main(lambda: self._generated(todo_batch))
            for i, entry in zip(todo, generated):
                writes = distributed.is_main_process() or not split
                if cache is not None and writes and cache.get_entry(requests[i]) != entry:  # a backend may cache as it goes
                    cache.put(requests[i], *entry)
                found[i] = entry
        return [self._judged(text, confidence, threshold) for text, confidence in found]  # type: ignore[misc]

    def _judged(self, text: str, confidence: float | None, threshold: float | None) -> ScoredAnswer:
        if threshold is None:
            return ScoredAnswer(text or "", confidence)
        if confidence is None:
            raise ConfigError(f"{type(self).__name__} gives no confidence scores, so abstain_below cannot be used")
        if confidence < threshold:
            return ScoredAnswer(self.options.refusal, confidence, abstained=True)
        return ScoredAnswer(text or "", confidence)

    def _generated(self, batch: list[list[Message]]) -> list[tuple[str, float | None]]:
        answers = self.generate_scored(batch)
        if len(answers) != len(batch):
            raise RuntimeError(
                f"{type(self).__name__}.generate returned {len(answers)} answers for {len(batch)} conversations"
            )
        return [(str(text), None if confidence is None else float(confidence)) for text, confidence in answers]

    def generate_scored(self, conversations: list[list[Message]]) -> list[tuple[str, float | None]]:
        """``(answer, confidence)`` per conversation; by default :meth:`generate` with no score."""
        return [(answer, None) for answer in self.generate(conversations)]

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
        fields = type(options).result_fields() - ANSWER_POLICY if isinstance(options, ComponentOptions) else None
        return options.model_dump(mode="json", include=fields, fallback=lambda v: f"<{type(v).__name__}>")

    def cache_request(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The cache description of one request (backend, model, :meth:`cache_identity`, messages)."""
        return self.cache_requests([messages])[0]

    def cache_requests(self, batch: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """:meth:`cache_request` of each conversation, the identity computed once for the batch."""
        identity = self.cache_identity()
        return [request_key(self.name, self.model_label, identity, messages) for messages in batch]

    @property
    def model_label(self) -> str:
        """A short label for reports (the model id by default)."""
        return str(getattr(self.options, "model", self.name))
