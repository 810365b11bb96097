"""The OpenAI chat-completions wire format this server speaks: requests, errors, responses.

Requests are validated with pydantic; anything wrong becomes an :class:`ApiError`, which the
app answers as OpenAI does (``{"error": {"message", "type", "param", "code"}}``) with a 4xx
status. Fields that would change what an OpenAI server returns but that this server cannot
honour (``n`` > 1, ``stop``, ``logprobs``, tools) are refused with a message, never ignored.
Other unknown fields (``user``, penalties, ``metadata`` …) are accepted and have no effect.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from finetunekit.errors import FinetunekitError


#: Request fields this server cannot honour, and what it answers when one is set.
UNSUPPORTED = {
    "stop": "stop sequences are not supported by this server; the answer ends at the model's end of turn",
    "logprobs": "logprobs are not supported by this server",
    "tools": "tools are not supported by this server",
}


class ApiError(FinetunekitError):
    """A request the server refuses: HTTP ``status``, OpenAI's error ``type``, the ``param`` at fault."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends with an error."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class TextPart(BaseModel):
    """One part of a message's content given as a list (only text parts are understood)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        """The message's text (list content joined; ``None`` is empty)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a last chunk with the token counts."""

    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """A ``POST /v1/chat/completions`` body."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice per request is supported.")
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    tools: list[Any] | None = None

    @field_validator("stop", "logprobs", "tools")
    @classmethod
    def _refuse_unsupported(cls, value: Any, info: ValidationInfo) -> Any:
        if value:
            raise ValueError(UNSUPPORTED[info.field_name])
        return value

    def conversation(self) -> list[dict[str, str]]:
        """The messages as ``{"role", "content"}`` dicts for the chat template."""
        return [{"role": m.role, "content": m.text()} for m in self.messages]

    def token_limit(self) -> int | None:
        """``max_completion_tokens`` (the newer name) or ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens


def parse_request(body: bytes) -> ChatCompletionRequest:
    """The request in ``body``, or an :class:`ApiError` (400) saying what is wrong and where."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(data).__name__}")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ApiError(400, f"{param}: {message}{more}" if param else message + more, param=param) from None


def completion_id() -> str:
    """A fresh ``chatcmpl-…`` id."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI's ``usage`` object."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(cid: str, model: str, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A ``chat.completion`` response with one choice."""
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(cid: str, model: str, delta: dict[str, Any] | None, finish_reason: str | None = None,
          usage_counts: dict[str, int] | None = None) -> str:
    """One ``chat.completion.chunk`` as a server-sent event (``delta=None``: the usage-only chunk)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    body: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "choices": choices}
    if usage_counts is not None:
        body["usage"] = usage_counts
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


#: The event that ends a stream.
DONE_EVENT = "data: [DONE]\n\n"
