"""ChatModel "openai": chat completions against OpenAI or any OpenAI-compatible server.

Requests run concurrently (a bounded thread pool); retries of 408/409/429/5xx and timeouts,
with backoff that honours ``Retry-After``, are the SDK's own (``max_retries``, ``timeout``).
What this adds: the bound, answer order, an on-disk cache written as each answer arrives
(so a crashed or repeated run sends only what is missing), de-duplication of identical
requests within one call, and a progress bar.

Confidence (for ``abstain_below`` and the pipeline's calibration) comes from the API's token
log-probabilities: with ``logprobs=True`` each request asks for them, and an answer's
confidence is the mean log-probability of its first ``confidence_tokens`` tokens after the
first occurrence of ``confidence_after`` — as the local chat model scores its greedy answers.
Logprobs are opt-in (some models and compatible servers reject them), so ``abstain_below``
without ``logprobs=True`` is a :class:`~finetunekit.errors.ConfigError`, raised before any
request is sent.

With ``batch=True`` the uncached questions go through the Batch API instead (half the price,
answers within 24 hours): one JSONL file of requests, one batch, polled until it ends, its
answers put back in order (:mod:`finetunekit.backends.openai.batch`). The batch is recorded
in the answer cache directory before anything is sent, so a killed run reattaches to it.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any, Callable, Mapping, Sequence

from pydantic import Field

from finetunekit.atomic import write_json
from finetunekit.errors import ConfigError, FinetunekitError
from finetunekit.component import option
from finetunekit.hookspecs import hookimpl
from finetunekit.chat import ChatModel, Message, to_messages
from finetunekit.answer_cache import AnswerCache, hash_request
from finetunekit.backends.openai.client import (
    OpenAIConnectionOptions,
    api_key_of,
    build_client,
    endpoint_of,
    endpoint_of_options,
    failure_summary,
    redact,
)
from finetunekit.backends.openai.cost import AnswerCostEstimate, answer_cost_estimate
from finetunekit.backends.openai.poll import say_to_stderr


class ChatRequestError(FinetunekitError):
    """Some requests still failed after the SDK's retries; answers received so far are cached."""

    def __init__(self, message: str, failures: int) -> None:
        self.failures = failures
        super().__init__(message)


def token_confidence(tokens: Sequence[Any], after: str | None, n_tokens: int) -> float | None:
    """The mean log-probability of ``tokens[start:start + n_tokens]`` (all of them when that
    window is empty), ``start`` being the first token after the first occurrence of ``after``
    in the tokens' concatenated text (0 when ``after`` is unset or absent).

    ``tokens``: the API's ``ChatCompletionTokenLogprob`` items (``.token``, ``.logprob``,
    ``.bytes``). The marker is searched in the tokens' UTF-8 ``bytes`` when every token has
    them (a token may hold part of a character), else in their ``token`` strings. ``None`` when
    there are no tokens.
    """
    if not tokens:
        return None
    logprobs = [float(t.logprob) for t in tokens]
    start = 0
    if after:
        if all(getattr(t, "bytes", None) is not None for t in tokens):
            pieces: list[Any] = [bytes(t.bytes) for t in tokens]
            text: Any = b"".join(pieces)
            marker: Any = after.encode("utf-8")
        else:
            pieces = [str(t.token) for t in tokens]
            text, marker = "".join(pieces), after
        found = text.find(marker)
        if found >= 0:
            end, length, start = found + len(marker), 0, len(pieces)
            for position, piece in enumerate(pieces):
                length += len(piece)
                if length >= end:
                    start = position + 1
                    break
    window = logprobs[start : start + n_tokens] or logprobs
    return sum(window) / len(window)


class ScoredAnswerCache(AnswerCache):
    """The answer cache as the openai chat model reads it: an entry's confidence counts only
    when it was computed with the current confidence settings (``scored_with``, stored beside
    it) and the model asks for logprobs; otherwise it is dropped, and with ``logprobs`` on an
    entry without a confidence counts as missing (asked again, then overwritten with one).

    So the cache key does not depend on the logprobs options: plain and scored runs share
    their answers, and the answer text is never asked for twice.
    """

    def __init__(self, directory: Any, scored_with: Mapping[str, Any] | None) -> None:
        super().__init__(directory)
        self.scored_with = None if scored_with is None else dict(scored_with)

    def get_entry(self, request: Mapping[str, Any]) -> tuple[str, float | None] | None:
        entry = super().get_entry(request)
        if entry is None or self.scored_with is None:  # no logprobs: answers without a score
            return None if entry is None else (entry[0], None)
        if entry[1] is None or self._stored_scored_with(request) != self.scored_with:
            return None
        return entry

    def put(self, request: Mapping[str, Any], answer: str, confidence: float | None = None) -> None:
        entry: dict[str, Any] = {"request": dict(request), "answer": answer}
        if confidence is not None:
            entry["confidence"] = confidence
            entry["scored_with"] = self.scored_with
        write_json(self._path(hash_request(request)), entry)

    def _stored_scored_with(self, request: Mapping[str, Any]) -> Any:
        try:
            return json.loads(self._path(hash_request(request)).read_text(encoding="utf-8")).get("scored_with")
        except (OSError, ValueError, AttributeError):
            return None


class OpenAIChatModel(ChatModel):
    """Answers conversations through ``chat.completions.create``."""

    name = "openai"
    split_answers = False  # under several processes rank 0 asks the API for every answer

    class Options(OpenAIConnectionOptions, ChatModel.Options):
        """Model and sampling options, concurrency, retries and the answer cache."""

        model: str = Field(default="gpt-4o-mini", description="Model id (a fine-tuned ``ft:…`` id works too).")
        temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature; 0 = (nearly) deterministic.")
        max_tokens: int | None = Field(default=512, gt=0, description="Longest answer, in tokens.")
        seed: int | None = Field(default=0, description="Seed sent with each request (best-effort determinism).")
        concurrency: int = option(affects_result=False, default=8, ge=1, le=256, description="Requests in flight at once.")
        progress: bool = option(affects_result=False, default=True, description="Show a progress bar.")
        logprobs: bool = Field(
            default=False, description="Request token log-probabilities to score answers; needed for abstain_below "
            "and calibration (some models and compatible servers reject it).",
        )
        confidence_tokens: int = Field(
            default=40, ge=1, description="Answer tokens whose mean log-probability is the answer's confidence "
            "(with logprobs).",
        )
        confidence_after: str | None = Field(
            default=None, description="Score the tokens after the first occurrence of this text (e.g. the answer's "
            "fixed opening); unset = from the first token.",
        )
        batch: bool = option(
            affects_result=False, default=False, description="Send uncached questions through the Batch API "
            "(half price, answers within 24 h; needs answer_cache_dir, where the batch is recorded so a killed "
            "run reattaches).",
        )
        batch_retries: int = option(
            affects_result=False, default=2, ge=0, le=10, description="Batch mode: further, smaller batches for "
            "the requests that failed with a retryable error (429, 5xx, timeout, batch expired).",
        )
        batch_max_requests: int = option(
            affects_result=False, default=50_000, ge=1, le=50_000, description="Batch mode: most requests per "
            "batch (the API takes 50,000 and 200 MB); more questions make several batches.",
        )
        batch_poll_interval_min: float = option(
            affects_result=False, default=10.0, gt=0, description="Batch mode: seconds between polls after a change.",
        )
        batch_poll_interval_max: float = option(
            affects_result=False, default=300.0, gt=0, description="Batch mode: longest wait between polls.",
        )

    #: where batch progress lines go, and how to wait between polls (tests may replace them)
    say: Callable[[str], None] = staticmethod(say_to_stderr)
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, options: Any = None, *, plugins: Any = None) -> None:
        super().__init__(options, plugins=plugins)
        self._client: Any = None
        self.cache = self.answer_cache

    @property
    def client(self) -> Any:
        """The SDK client (built on first use)."""
        if self._client is None:
            self._client = build_client(self.options)
        return self._client

    @property
    def answer_cache(self) -> ScoredAnswerCache | None:
        """The on-disk answer cache; its confidences count only with ``logprobs`` and the
        current confidence settings (see :class:`ScoredAnswerCache`)."""
        o = self.options
        if not o.answer_cache_dir:
            return None
        scored_with = {"confidence_tokens": o.confidence_tokens, "confidence_after": o.confidence_after}
        return ScoredAnswerCache(o.answer_cache_dir, scored_with if o.logprobs else None)

    def cache_identity(self) -> dict[str, Any]:
        """Model, answer-changing options and the endpoint (from the options, not a client, so
        reading cached answers needs no API key). Not the logprobs options: they change no
        answer text, and the cache checks the confidence settings itself."""
        o = self.options
        return {"model": o.model, "temperature": o.temperature, "max_tokens": o.max_tokens, "seed": o.seed,
                "endpoint": endpoint_of_options(o)}

    def cost_estimate(self, conversations: Sequence[Any]) -> AnswerCostEstimate:
        """What answering ``conversations`` would cost at most, sending nothing: only the
        distinct ones the answer cache lacks count, at half price with ``batch``."""
        batch = [to_messages(c, i) for i, c in enumerate(conversations)]
        cache = self.cache
        distinct = {hash_request(r): messages for r, messages in zip(self.cache_requests(batch), batch)
                    if cache is None or cache.get_entry(r) is None}
        o = self.options
        return answer_cost_estimate(list(distinct.values()), model=o.model, max_tokens=o.max_tokens, batch=o.batch)

    def generate(self, conversations: list[list[Message]]) -> list[str]:
        """One answer per conversation, in order (see :meth:`generate_scored`)."""
        return [text for text, _ in self.generate_scored(conversations)]

    def generate_scored(self, conversations: list[list[Message]]) -> list[tuple[str, float | None]]:
        """One ``(answer, confidence)`` per conversation, in order; each is cached as it
        arrives, so a crashed run keeps what it received. The confidence is ``None`` without
        ``logprobs`` (or when the server returns none)."""
        if self.options.abstain_below is not None and not self.options.logprobs:
            raise ConfigError("OpenAIChatModel gives no confidence scores without logprobs=true, so abstain_below "
                              "cannot be used; set the chat option logprobs = true")
        requests = self.cache_requests(conversations)
        if self.options.batch:
            return self._generate_batch(conversations, requests)
        answers: list[tuple[str, float | None] | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}  # request hash -> positions waiting for it
        for index in range(len(requests)):
            pending.setdefault(hash_request(requests[index]), []).append(index)
        if pending:
            self._fetch(conversations, requests, pending, answers)
        return [a if a is not None else ("", None) for a in answers]

    def _fetch(self, conversations: list[list[Message]], requests: list[dict[str, Any]],
               pending: dict[str, list[int]], answers: list[tuple[str, float | None] | None]) -> None:
        from tqdm.auto import tqdm

        failures: list[BaseException] = []
        client = self.client
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.options.concurrency) as pool, tqdm(
            total=len(pending), desc=f"openai {self.options.model}", unit="req",
            disable=not self.options.progress,
        ) as bar:
            def ask_and_keep(position: int) -> tuple[str, float | None]:
                answer = self._ask(client, conversations[position])
                if self.cache is not None:  # on disk before this worker asks again: a kill loses no paid answer
                    self.cache.put(requests[position], *answer)
                return answer

            futures = {pool.submit(ask_and_keep, positions[0]): positions for positions in pending.values()}
            for future in concurrent.futures.as_completed(futures):
                positions = futures[future]
                try:
                    answer = future.result()
                except concurrent.futures.CancelledError:
                    continue
                except Exception as exc:  # noqa: BLE001 - collected, reported below
                    failures.append(exc)
                    for other in futures:  # stop starting new requests; running ones finish
                        other.cancel()
                    continue
                for index in positions:
                    answers[index] = answer
                bar.update(1)
        if failures:
            missing = sum(1 for a in answers if a is None)
            first = redact(f"{type(failures[0]).__name__}: {failures[0]}", api_key_of(client))
            kept = "; answers received so far are cached, a rerun sends only the rest" if self.cache else ""
            raise ChatRequestError(
                f"{len(failures)} request(s) to {endpoint_of(client)} "
                f"{failure_summary(failures[0], self.options.max_retries)}, {missing} conversation(s) "
                f"unanswered{kept}. First error: {first}", len(failures))

    def _generate_batch(self, conversations: list[list[Message]],
                        requests: list[dict[str, Any]]) -> list[tuple[str, float | None]]:
        """Answer through the Batch API: one request per distinct conversation, each cached."""
        from finetunekit.backends.openai.batch import BatchRunner
        from finetunekit.backends.openai.batch_state import BatchRequest

        if self.cache is None:
            raise ConfigError("the openai chat model's batch mode needs answer_cache_dir: the batch is recorded there "
                              "before it is sent, so a killed run reattaches instead of paying twice")
        unique: dict[str, BatchRequest] = {}
        for messages, request in zip(conversations, requests):
            key = hash_request(request)
            if key not in unique:
                unique[key] = BatchRequest(f"q{len(unique)}-{key[:12]}", request, self.request_body(messages))
        answers = BatchRunner(self, self.client, self.cache).run(list(unique.values()))
        return [answers[hash_request(request)] for request in requests]

    def request_body(self, messages: list[Message]) -> dict[str, Any]:
        """The ``chat.completions.create`` arguments for ``messages`` (also a batch line's body)."""
        o = self.options
        body: dict[str, Any] = {"model": o.model, "messages": messages, "temperature": o.temperature}
        if o.max_tokens is not None:
            body["max_tokens"] = o.max_tokens
        if o.seed is not None:
            body["seed"] = o.seed
        if o.logprobs:
            body["logprobs"] = True
        return body

    def read_completion(self, response: Any) -> tuple[str, float | None]:
        """``(answer, confidence)`` of a ``ChatCompletion`` (a refusal is the answer when there is
        no content; the confidence is ``None`` without logprobs)."""
        o = self.options
        choice = response.choices[0]
        message = choice.message
        refused = not message.content and bool(getattr(message, "refusal", None))
        text = message.content or getattr(message, "refusal", None) or ""
        scored = getattr(choice, "logprobs", None) if o.logprobs else None
        tokens = getattr(scored, "refusal" if refused else "content", None) if scored is not None else None
        return text, token_confidence(tokens or [], o.confidence_after, o.confidence_tokens)

    def _ask(self, client: Any, messages: list[Message]) -> tuple[str, float | None]:
        return self.read_completion(client.chat.completions.create(**self.request_body(messages)))


@hookimpl
def register_chat_models(register: Callable[[Any], None]) -> None:
    """Register the "openai" chat model."""
    register(OpenAIChatModel)


__all__ = ["ChatRequestError", "OpenAIChatModel", "ScoredAnswerCache", "token_confidence"]
