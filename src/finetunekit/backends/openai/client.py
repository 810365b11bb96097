"""Building the ``openai`` SDK client that the OpenAI trainer and chat model share.

The API key is read from the environment at the moment the client is built and is never
stored in options, files, logs or messages. ``openai`` is imported lazily.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from typing import Any, Iterator

from pydantic import Field, field_validator

from finetunekit.component import ComponentOptions, option
from finetunekit.errors import ConfigError, FinetunekitError, MissingDependencyError
from finetunekit.redaction import add_secret, is_env_var_name, scrub

#: Placeholder key sent to OpenAI-compatible servers that need none (vLLM, llama.cpp, Ollama).
NO_KEY = "no-key-needed"
#: The endpoint the SDK uses when neither ``base_url`` nor ``OPENAI_BASE_URL`` names one.
DEFAULT_ENDPOINT = "https://api.openai.com/v1"


class OpenAIRequestError(FinetunekitError):
    """An API request failed after the SDK's retries (message redacted of the API key)."""

    def __init__(self, message: str, *, status_code: int | None = None, request_id: str | None = None) -> None:
        self.status_code, self.request_id = status_code, request_id
        super().__init__(message)


class OpenAIConnectionOptions(ComponentOptions):
    """Where and how to reach an OpenAI-compatible API (shared by trainer and chat model)."""

    client: Any = option(affects_result=False, default=None, exclude=True, repr=False,
                        description="An openai.OpenAI or AzureOpenAI client to use as is (never serialised).")
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")
    api_key_env: str = option(affects_result=False, default="OPENAI_API_KEY", description="Environment variable holding the API key.")
    max_retries: int = option(affects_result=False, default=8, ge=0, description="SDK retries of 408/409/429/5xx/timeouts per request.")
    timeout: float = option(affects_result=False, default=120.0, gt=0, description="Seconds before one request times out (then retried).")

    @field_validator("api_key_env")
    @classmethod
    def _names_a_variable(cls, value: str) -> str:
        if not is_env_var_name(value):
            raise ValueError("must be the name of the environment variable that holds the API key "
                             "(letters, digits and _), not the key itself")
        return value

    @field_validator("client")
    @classmethod
    def _looks_like_openai_client(cls, value: Any) -> Any:
        if value is not None and not all(hasattr(value, attr) for attr in ("with_options", "base_url")):
            raise ValueError(f"expected an openai.OpenAI or openai.AzureOpenAI client, got {type(value).__name__}")
        return value


def import_openai() -> Any:
    """The ``openai`` module, or a :class:`MissingDependencyError` saying how to install it."""
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - openai is a core dependency
        raise MissingDependencyError("the openai SDK", "pip install 'openai>=3'") from exc
    return openai


def build_client(options: OpenAIConnectionOptions) -> Any:
    """The client to use: the one passed in (with our retry/timeout settings) or a new one."""
    if options.client is not None:
        add_secret(api_key_of(options.client))
        return options.client.with_options(max_retries=options.max_retries, timeout=options.timeout)
    openai = import_openai()
    key = os.environ.get(options.api_key_env)
    add_secret(key)
    if not key:
        if options.base_url is None:
            raise ConfigError(
                f"no API key: set the environment variable {options.api_key_env} "
                "(or choose another with api_key_env=, or pass client=openai.OpenAI(...) / "
                "openai.AzureOpenAI(...))")
        key = NO_KEY
    return openai.OpenAI(api_key=key, base_url=options.base_url, max_retries=options.max_retries,
                         timeout=options.timeout)


def endpoint_of(client: Any) -> str:
    """The client's base URL as a string (for cache keys and messages; holds no secret)."""
    return str(getattr(client, "base_url", ""))


def endpoint_of_options(options: OpenAIConnectionOptions) -> str:
    """The endpoint ``options`` talk to, without building a client (so without an API key).

    The passed client's base URL, else ``base_url``, else ``OPENAI_BASE_URL``, else OpenAI's
    own; written as the SDK writes it (with a trailing slash), so it equals
    :func:`endpoint_of` of the client :func:`build_client` would build.
    """
    if options.client is not None:
        return endpoint_of(options.client)
    url = options.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_ENDPOINT
    parts = urllib.parse.urlsplit(url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every non-empty secret replaced by ``***``, then scrubbed of every other
    registered secret value (:func:`finetunekit.redaction.scrub`)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return scrub(text)


#: HTTP statuses the SDK retries (with ``max_retries``); other errors are answered at once.
RETRIED_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def failure_summary(exc: BaseException, max_retries: int) -> str:
    """How a request ended: "after N retries" only when the SDK retried that kind of error
    (timeouts, connection errors, 408/409/429/5xx); "not retried" for others (a 400 or 401)."""
    status = getattr(exc, "status_code", None)
    if status is None or status in RETRIED_STATUSES:
        return f"failed after {max_retries} retries"
    return f"was refused with HTTP {status} (not retried)"


def api_key_of(client: Any) -> str | None:
    """The key a client holds (used only to redact it from messages)."""
    key = getattr(client, "api_key", None)
    return key if isinstance(key, str) else None


@contextlib.contextmanager
def api_errors(client: Any) -> Iterator[None]:
    """Turn the SDK's errors into :class:`OpenAIRequestError` with the key redacted."""
    import openai

    try:
        yield
    except openai.APIError as exc:
        message = redact(f"{type(exc).__name__}: {exc}", api_key_of(client))
        raise OpenAIRequestError(
            f"OpenAI API request {failure_summary(exc, getattr(client, 'max_retries', 0))} "
            f"({endpoint_of(client)}): {message}",
            status_code=getattr(exc, "status_code", None), request_id=getattr(exc, "request_id", None),
        ) from None
