"""The FastAPI app: ``/v1/models``, ``/v1/chat/completions`` (plain and streamed), ``/health``.

Every error is answered in OpenAI's shape (``{"error": {"message", "type", "param",
"code"}}``) and the server goes on serving: a malformed body is a 400, a body over the size
limit a 413, a wrong or missing API key a 401, an unknown model a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from finetunekit.backends.local.chat import LocalChatModel, encode_conversation
from finetunekit.serve import protocol
from finetunekit.serve.batcher import MicroBatcher
from finetunekit.serve.engine import Answer, Engine, GenerationJob
from finetunekit.serve.protocol import ApiError


@dataclass(frozen=True)
class ServeSettings:
    """How the server answers: the served model's id, batching, limits and the API key."""

    model_id: str
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_request_bytes: int = 1_000_000
    default_max_tokens: int = 256
    api_key: str | None = None

    def __repr__(self) -> str:  # never show the key
        return (f"ServeSettings(model_id={self.model_id!r}, max_batch={self.max_batch}, max_wait_ms={self.max_wait_ms}, "
                f"max_request_bytes={self.max_request_bytes}, default_max_tokens={self.default_max_tokens}, "
                f"api_key={'set' if self.api_key else None})")


def create_app(chat_model: LocalChatModel, settings: ServeSettings) -> FastAPI:
    """An app serving ``chat_model`` (loaded on the spot) with ``settings``."""
    loaded = chat_model.loaded
    tokenizer = copy.deepcopy(loaded.tokenizer)  # the event loop's own: the generating thread uses the other
    context_length = getattr(loaded.model.config, "max_position_embeddings", None)
    batcher: MicroBatcher[GenerationJob] = MicroBatcher(
        Engine(chat_model), max_batch=settings.max_batch, max_wait=settings.max_wait_ms / 1000)
    counts = {"requests": 0, "errors": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="finetunekit serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        counts["errors"] += 1
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        counts["errors"] += 1
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return JSONResponse(ApiError(exc.status_code, message).body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        counts["errors"] += 1
        error = ApiError(500, f"the server failed to answer: {type(exc).__name__}: {exc}", type="server_error")
        return JSONResponse(error.body(), status_code=500)

    def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                           code="invalid_api_key")

    def model_card() -> dict[str, Any]:
        return {"id": settings.model_id, "object": "model", "created": 0, "owned_by": "finetunekit"}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": settings.model_id, "requests": counts["requests"], "errors": counts["errors"],
                "batches": batcher.batches, "generate_calls": chat_model.generate_calls,
                "max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> dict[str, Any]:
        authorize(request)
        check_model(model_id)
        return model_card()

    def check_model(model_id: str) -> None:
        if model_id != settings.model_id:
            raise ApiError(404, f"the model {model_id!r} does not exist here; this server serves {settings.model_id!r}",
                           param="model", code="model_not_found")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        authorize(request)
        counts["requests"] += 1
        parsed = protocol.parse_request(await read_body(request, settings.max_request_bytes))
        check_model(parsed.model)
        job = to_job(parsed)
        if parsed.stream:
            return StreamingResponse(stream(job, parsed), media_type="text/event-stream")
        answer: Answer = await batcher.submit(job)
        return protocol.completion(protocol.completion_id(), settings.model_id, answer.text, answer.finish_reason,
                                   answer.prompt_tokens, answer.completion_tokens)

    def to_job(parsed: protocol.ChatCompletionRequest) -> GenerationJob:
        prompt = encode_conversation(tokenizer, parsed.conversation())
        limit = parsed.token_limit()
        if context_length is not None:
            room = context_length - len(prompt)
            if room < 1 or (limit is not None and limit > room):
                raise ApiError(400, f"this model's maximum context length is {context_length} tokens; the messages take "
                               f"{len(prompt)} and max_tokens asks for {limit or 1} more", param="messages",
                               code="context_length_exceeded")
            limit = limit or min(settings.default_max_tokens, room)
        return GenerationJob(prompt=prompt, max_tokens=limit or settings.default_max_tokens,
                             temperature=parsed.temperature or 0.0, top_p=parsed.top_p or 1.0, seed=parsed.seed)

    async def stream(job: GenerationJob, parsed: protocol.ChatCompletionRequest) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str] = asyncio.Queue()
        job.on_text = lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece)
        cid, model_id = protocol.completion_id(), settings.model_id
        answer = asyncio.ensure_future(batcher.submit(job))
        yield protocol.chunk(cid, model_id, {"role": "assistant", "content": ""})
        while not (answer.done() and pieces.empty()):
            getter = asyncio.ensure_future(pieces.get())
            await asyncio.wait({getter, answer}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield protocol.chunk(cid, model_id, {"content": getter.result()})
            else:
                getter.cancel()
        try:
            result: Answer = answer.result()
        except Exception as exc:  # noqa: BLE001 - the status line is sent: report in the stream
            counts["errors"] += 1
            error = exc if isinstance(exc, ApiError) else ApiError(500, f"{type(exc).__name__}: {exc}", type="server_error")
            yield f"data: {json.dumps(error.body())}\n\n"
            return
        yield protocol.chunk(cid, model_id, {}, finish_reason=result.finish_reason)
        if parsed.stream_options is not None and parsed.stream_options.include_usage:
            yield protocol.chunk(cid, model_id, None,
                                 usage_counts=protocol.usage(result.prompt_tokens, result.completion_tokens))
        yield protocol.DONE_EVENT

    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 :class:`ApiError` as soon as it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body has {declared} bytes; this server accepts at most {limit}",
                       code="request_too_large")
    body = bytearray()
    async for part in request.stream():
        body.extend(part)
        if len(body) > limit:
            raise ApiError(413, f"the request body is longer than {limit} bytes, the most this server accepts",
                           code="request_too_large")
    return bytes(body)
