"""ChatModel "openai": chat completions against OpenAI or any OpenAI-compatible server.

Requests run concurrently (a bounded thread pool); retries of 408/409/429/5xx and timeouts,
with backoff that honours ``Retry-After``, are the SDK's own (``max_retries``, ``timeout``).
What this adds: the bound, answer order, an on-disk cache written as each answer arrives
(so a crashed or repeated run sends only what is missing), de-duplication of identical
requests within one call, and a progress bar.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable

from pydantic import Field

from finetunekit.errors import FinetunekitError
from finetunekit.component import option
from finetunekit.hookspecs import hookimpl
from finetunekit.chat import ChatModel, Message
from finetunekit.answer_cache import hash_request
from finetunekit.backends.openai.client import OpenAIConnectionOptions, api_key_of, build_client, endpoint_of, endpoint_of_options, redact


class ChatRequestError(FinetunekitError):
    """Some requests still failed after the SDK's retries; answers received so far are cached."""

    def __init__(self, message: str, failures: int) -> None:
        self.failures = failures
        super().__init__(message)


class OpenAIChatModel(ChatModel):
    """Answers conversations through ``chat.completions.create``."""

    name = "openai"

    class Options(OpenAIConnectionOptions, ChatModel.Options):
        """Model and sampling options, concurrency, retries and the answer cache."""

        model: str = Field(default="gpt-4o-mini", description="Model id (a fine-tuned ``ft:…`` id works too).")
        temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature; 0 = (nearly) deterministic.")
        max_tokens: int | None = Field(default=512, gt=0, description="Longest answer, in tokens.")
        seed: int | None = Field(default=0, description="Seed sent with each request (best-effort determinism).")
        concurrency: int = option(affects_result=False, default=8, ge=1, le=256, description="Requests in flight at once.")
        progress: bool = option(affects_result=False, default=True, description="Show a progress bar.")

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

    def cache_identity(self) -> dict[str, Any]:
        """Model, answer-changing options and the endpoint (from the options, not a client, so
        reading cached answers needs no API key)."""
        o = self.options
        return {"model": o.model, "temperature": o.temperature, "max_tokens": o.max_tokens, "seed": o.seed,
                "endpoint": endpoint_of_options(o)}

    def generate(self, conversations: list[list[Message]]) -> list[str]:
        """One answer per conversation, in order; each is cached as it arrives, so a crashed
        run keeps what it received."""
        requests = [self.cache_request(messages) for messages in conversations]
        answers: list[str | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}  # request hash -> positions waiting for it
        for index, answer in enumerate(answers):
            if answer is None:
                pending.setdefault(hash_request(requests[index]), []).append(index)
        if pending:
            self._fetch(conversations, requests, pending, answers)
        return [a if a is not None else "" for a in answers]

    def _fetch(self, conversations: list[list[Message]], requests: list[dict[str, Any]],
               pending: dict[str, list[int]], answers: list[str | None]) -> None:
        from tqdm.auto import tqdm

        failures: list[BaseException] = []
        client = self.client
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.options.concurrency) as pool, tqdm(
            total=len(pending), desc=f"openai {self.options.model}", unit="req",
            disable=not self.options.progress,
        ) as bar:
            futures = {pool.submit(self._ask, client, conversations[positions[0]]): positions
                       for positions in pending.values()}
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
                if self.cache is not None:
                    self.cache.put(requests[positions[0]], answer)
                for index in positions:
                    answers[index] = answer
                bar.update(1)
        if failures:
            missing = sum(1 for a in answers if a is None)
            first = redact(f"{type(failures[0]).__name__}: {failures[0]}", api_key_of(client))
            kept = "; answers received so far are cached, a rerun sends only the rest" if self.cache else ""
            raise ChatRequestError(
                f"{len(failures)} request(s) to {endpoint_of(client)} failed after {self.options.max_retries} "
                f"retries, {missing} conversation(s) unanswered{kept}. First error: {first}", len(failures))

    def _ask(self, client: Any, messages: list[Message]) -> str:
        o = self.options
        extra: dict[str, Any] = {}
        if o.max_tokens is not None:
            extra["max_tokens"] = o.max_tokens
        if o.seed is not None:
            extra["seed"] = o.seed
        response = client.chat.completions.create(model=o.model, messages=messages, temperature=o.temperature,
                                                  **extra)
        message = response.choices[0].message
        return message.content or getattr(message, "refusal", None) or ""


@hookimpl
def register_chat_models(register: Callable[[Any], None]) -> None:
    """Register the "openai" chat model."""
    register(OpenAIChatModel)


__all__ = ["ChatRequestError", "OpenAIChatModel"]
