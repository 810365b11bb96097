"""Answering a batch of chat-completion jobs with the ``local`` chat model, one ``generate`` per group.

Jobs that can share a ``model.generate`` call do: every greedy job of a batch runs in one call
(decoded up to the largest ``max_tokens`` of them, each answer then cut to its own limit —
greedy decoding makes the shorter answer a prefix of the longer one), and so does every
sampled job with the same temperature and top-p but no seed. A sampled job with a ``seed`` is
generated on its own, so the same request with the same seed gets the same answer.
Streaming jobs receive their text as it grows, from the generation's own steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable

from finetunekit.backends.local.chat import LocalChatModel
from finetunekit.backends.local.loading import end_of_turn_ids


@dataclass
class GenerationJob:
    """One request's prompt and sampling settings; ``on_text`` (called from the generating
    thread) receives each new piece of a streamed answer."""

    prompt: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    on_text: Callable[[str], None] | None = None

    def group(self, position: int) -> Hashable:
        """Jobs with equal keys run in one ``generate`` call."""
        if self.temperature == 0:
            return ("greedy",)
        if self.seed is not None:
            return ("seeded", position)
        return ("sampled", self.temperature, self.top_p)


@dataclass(frozen=True)
class Answer:
    """A job's answer: its text, why it ended (``stop`` or ``length``) and the token counts."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class Engine:
    """The batch function of the server's :class:`~finetunekit.serve.batcher.MicroBatcher`."""

    def __init__(self, chat_model: LocalChatModel) -> None:
        self.chat_model = chat_model
        self.stop_ids = frozenset(end_of_turn_ids(chat_model.loaded.tokenizer))

    def __call__(self, jobs: list[GenerationJob]) -> list[Answer | Exception]:
        """One answer (or the exception its group raised) per job, in order."""
        groups: dict[Hashable, list[int]] = {}
        for position, job in enumerate(jobs):
            groups.setdefault(job.group(position), []).append(position)
        results: list[Answer | Exception] = [RuntimeError("not answered")] * len(jobs)
        for positions in groups.values():
            try:
                answers: list[Any] = self._generate([jobs[p] for p in positions])
            except Exception as exc:  # noqa: BLE001 - the group's jobs fail, the others are answered
                answers = [exc] * len(positions)
            for position, answer in zip(positions, answers):
                results[position] = answer
        return results

    def _generate(self, jobs: list[GenerationJob]) -> list[Answer]:
        first = jobs[0]
        streams = [_TextStream(self.chat_model.decode, self.stop_ids, j.max_tokens, j.on_text) if j.on_text else None
                   for j in jobs]

        def on_step(tokens: list[int]) -> None:
            for stream, token in zip(streams, tokens):
                if stream is not None:
                    stream.add(token)

        rows = self.chat_model.generate_tokens(
            [j.prompt for j in jobs], max_new_tokens=max(j.max_tokens for j in jobs), temperature=first.temperature,
            top_p=first.top_p, seed=first.seed, on_step=on_step if any(streams) else None,
        )
        answers = []
        for job, row, stream in zip(jobs, rows, streams):
            tokens = row.tokens[: job.max_tokens]
            finished = row.finished and len(row.tokens) < job.max_tokens
            text = self.chat_model.decode(tokens)
            if stream is not None:
                stream.finish(text)
            answers.append(Answer(text, "stop" if finished else "length", len(job.prompt), len(tokens)))
        return answers


class _TextStream:
    """A streamed answer: collects its tokens step by step and emits the text they add.

    Text is emitted only while it extends what was sent (a token that ends inside a UTF-8
    character waits for the next one; leading and trailing blanks wait as the final answer
    strips them), so the pieces join to exactly the non-streamed answer.
    """

    def __init__(self, decode: Callable[[list[int]], str], stop_ids: frozenset[int], limit: int,
                 emit: Callable[[str], None]) -> None:
        self.decode, self.stop_ids, self.limit, self.emit = decode, stop_ids, limit, emit
        self.tokens: list[int] = []
        self.sent = ""
        self.done = False

    def add(self, token: int) -> None:
        """Take the row's next token (ignored after its end of turn or limit)."""
        if self.done:
            return
        if token in self.stop_ids:
            self.done = True
            return
        self.tokens.append(token)
        self.done = len(self.tokens) >= self.limit
        self._send(self.decode(self.tokens))

    def finish(self, text: str) -> None:
        """Send whatever of the final ``text`` is still unsent."""
        self._send(text)

    def _send(self, text: str) -> None:
        if text.endswith("\ufffd") or not text.startswith(self.sent) or len(text) == len(self.sent):
            return
        piece, self.sent = text[len(self.sent):], text
        self.emit(piece)
