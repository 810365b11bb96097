"""The HTTP side of the fake OpenAI server: routing, request parsing, faults and logging.

Paths are accepted with OpenAI's ``/v1`` prefix and with Azure OpenAI's ``/openai`` prefix
(``/openai/deployments/<name>/chat/completions``), so ``OpenAI`` and ``AzureOpenAI`` clients
both work against it.
"""

from __future__ import annotations

import json
import re
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from finetunekit.testing.fake_faults import ERROR_TYPES, LOSE_RESPONSE, LoggedRequest
from finetunekit.testing.fake_state import ApiError

if TYPE_CHECKING:
    from finetunekit.testing.fake_openai import FakeOpenAI

#: (method, path pattern after the prefix, route name)
ROUTE_TABLE = [
    ("POST", r"/files", "files.create"),
    ("GET", r"/files", "files.list"),
    ("GET", r"/files/(?P<id>[^/]+)", "files.retrieve"),
    ("GET", r"/files/(?P<id>[^/]+)/content", "files.content"),
    ("POST", r"/fine_tuning/jobs", "jobs.create"),
    ("GET", r"/fine_tuning/jobs", "jobs.list"),
    ("GET", r"/fine_tuning/jobs/(?P<id>[^/]+)", "jobs.retrieve"),
    ("POST", r"/fine_tuning/jobs/(?P<id>[^/]+)/cancel", "jobs.cancel"),
    ("GET", r"/fine_tuning/jobs/(?P<id>[^/]+)/events", "jobs.events"),
    ("GET", r"/fine_tuning/jobs/(?P<id>[^/]+)/checkpoints", "jobs.checkpoints"),
    ("POST", r"(?:/deployments/[^/]+)?/chat/completions", "chat.completions"),
    ("GET", r"/models", "models.list"),
    ("POST", r"/batches", "batches.create"),
    ("GET", r"/batches", "batches.list"),
    ("GET", r"/batches/(?P<id>[^/]+)", "batches.retrieve"),
    ("POST", r"/batches/(?P<id>[^/]+)/cancel", "batches.cancel"),
]
PREFIX = re.compile(r"^/(?:v1|openai)(?=/)")


def match_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The route name and path parameters of a request, or ``None``."""
    path = PREFIX.sub("", path.rstrip("/"))
    for route_method, pattern, route in ROUTE_TABLE:
        found = re.fullmatch(pattern, path)
        if route_method == method and found:
            return route, found.groupdict()
    return None


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields of a ``multipart/form-data`` body; a file field becomes ``(filename, bytes)``."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        fields[name] = (filename, payload) if filename is not None else payload.decode("utf-8")
    return fields


class FakeOpenAIHandler(BaseHTTPRequestHandler):
    """Serves one request against the :class:`FakeOpenAI` stored on the server object."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default per-request stderr logging."""

    @property
    def fake(self) -> FakeOpenAI:
        """The fake this server belongs to."""
        return self.server.fake  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """Handle a GET request."""
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        """Handle a POST request."""
        self._handle("POST")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        raw = self._read_body()
        found = match_route(method, url.path)
        route = found[0] if found else "unknown"
        body = self._decode(raw)
        if self.fake.latency:
            time.sleep(self.fake.latency)
        if not self._authorised():
            self._log(route, method, url.path, body, "error", 401)
            self._send_json(401, ApiError(401, "Incorrect API key provided.", code="invalid_api_key").body())
            return
        fault = self.fake.faults.take(route)
        lost = fault is not None and fault[1] == LOSE_RESPONSE
        if fault is not None and not lost:
            self._fault(route, method, url.path, body, *fault)
            return
        try:
            if found is None:
                raise ApiError(404, f"Unknown request URL: {method} {url.path}.", code="unknown_url")
            result = self.fake.dispatch(route, found[1], body, parse_qs(url.query))
        except ApiError as exc:
            self._log(route, method, url.path, body, "error", exc.status)
            self._send_json(exc.status, exc.body())
            return
        self._log(route, method, url.path, body, "ok", 200)
        if lost:  # carried out; the answer never arrives (the client is killed, or times out)
            self.fake.stopping.wait(fault[0].hang_seconds)
            self.close_connection = True
            return
        if isinstance(result, bytes):
            self._send(200, result, "application/octet-stream")
        else:
            self._send_json(200, result)

    def _decode(self, raw: bytes) -> Any:
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return parse_multipart(content_type, raw)
        if raw:
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return raw.decode("utf-8", errors="replace")
        return None

    def _authorised(self) -> bool:
        key = self.fake.api_key
        if key is None:
            return True
        return self.headers.get("Authorization") == f"Bearer {key}" or self.headers.get("api-key") == key

    def _fault(self, route: str, method: str, path: str, body: Any, rule: Any, status: int) -> None:
        if status == 0:  # a hang: wait past the client's timeout, then drop the connection
            self._log(route, method, path, body, "hang", 0)
            self.fake.stopping.wait(rule.hang_seconds)
            self.close_connection = True
            return
        self._log(route, method, path, body, f"fault:{status}", status)
        headers = {}
        if rule.retry_after is not None:
            headers = {"Retry-After": f"{rule.retry_after:g}",
                       "retry-after-ms": f"{rule.retry_after * 1000:g}"}
        error = ApiError(status, rule.message if status != 429 else "Rate limit reached; slow down.",
                         type=ERROR_TYPES.get(status, "server_error"),
                         code="rate_limit_exceeded" if status == 429 else None)
        self._send_json(status, error.body(), headers)

    def _log(self, route: str, method: str, path: str, body: Any, outcome: str, status: int) -> None:
        if isinstance(body, dict) and "file" in body and isinstance(body["file"], tuple):
            body = {**body, "file": (body["file"][0], len(body["file"][1]))}
        self.fake.log.add(LoggedRequest(route, method, path, body, outcome, status))

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", f"req_fake_{id(self):x}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True
