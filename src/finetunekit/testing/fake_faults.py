"""Fault scripting and the request log of the fake OpenAI server.

A :class:`FaultRule` says which requests (by route name, see :data:`ROUTES`) go wrong and
how: an HTTP error status (optionally with ``Retry-After``), a hang that outlasts the
client's timeout, or a lost response (the request is carried out, the answer never arrives:
what a client killed mid-request leaves on the server). Rules fire a fixed number of times, or at random with a seeded rate.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

#: Route names the fake understands; a fault rule may also use ``"*"`` (every route).
ROUTES = (
    "files.create",
    "files.retrieve",
    "files.content",
    "files.list",
    "jobs.create",
    "jobs.retrieve",
    "jobs.list",
    "jobs.cancel",
    "jobs.events",
    "jobs.checkpoints",
    "chat.completions",
    "models.list",
    "batches.create",
    "batches.retrieve",
    "batches.list",
    "batches.cancel",
)

FAULT_KINDS = ("status", "hang", "lose_response")
#: What :meth:`FaultRule.take` answers for a lost response.
LOSE_RESPONSE = -1

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


@dataclass
class FaultRule:
    """One scripted fault: ``kind`` is ``"status"`` (answer ``status``), ``"hang"`` or
    ``"lose_response"`` (carry the request out, then hang without answering).

    ``times`` is how many requests it hits (``None``: no limit); ``rate`` the chance that a
    matching request is hit (drawn from ``seed``); ``retry_after`` (seconds) adds the
    ``Retry-After``/``retry-after-ms`` headers; ``hang_seconds`` is how long a hang lasts.
    """

    route: str
    kind: str = "status"
    status: int = 500
    times: int | None = 1
    rate: float = 1.0
    retry_after: float | None = None
    hang_seconds: float = 30.0
    message: str = "The fake server had an error while processing your request."
    statuses: Sequence[int] = ()
    seed: int = 0
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.route != "*" and self.route not in ROUTES:
            raise ValueError(f"unknown route {self.route!r}; expected '*' or one of {ROUTES}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {self.rate}")
        self._rng.seed(self.seed)

    def take(self, route: str) -> int | None:
        """The status to answer (0 for a hang, :data:`LOSE_RESPONSE` for a lost response) if this
        rule hits ``route`` now, else ``None``."""
        if self.route not in ("*", route) or (self.times is not None and self.fired >= self.times):
            return None
        if self.rate < 1.0 and self._rng.random() >= self.rate:
            return None
        self.fired += 1
        if self.kind == "hang":
            return 0
        if self.kind == "lose_response":
            return LOSE_RESPONSE
        if self.statuses:
            return self._rng.choice(list(self.statuses))
        return self.status


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake received: route, method, path, parsed JSON body and outcome.

    ``outcome`` is ``"ok"``, ``"error"`` (a genuine API error such as 404), ``"fault:<status>"``
    or ``"hang"``; ``status`` is the HTTP status sent (0 for a hang).
    """

    route: str
    method: str
    path: str
    body: Any
    outcome: str
    status: int


class RequestLog:
    """Thread-safe list of :class:`LoggedRequest` with counting helpers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def add(self, entry: LoggedRequest) -> None:
        """Append one entry."""
        with self._lock:
            self._entries.append(entry)

    def entries(self, route: str | None = None, outcome: str | None = None) -> list[LoggedRequest]:
        """A copy of the log, optionally only one route and/or one outcome."""
        with self._lock:
            return [
                e
                for e in self._entries
                if (route is None or e.route == route) and (outcome is None or e.outcome == outcome)
            ]

    def count(self, route: str | None = None, outcome: str | None = "ok") -> int:
        """How many requests of ``route`` ended with ``outcome`` (``None``: any outcome)."""
        return len(self.entries(route, outcome))

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


class FaultScript:
    """The active fault rules, consulted in order for each request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        """Activate ``rule`` and return it (its ``fired`` counter shows how often it hit)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def take(self, route: str) -> tuple[FaultRule, int] | None:
        """The first rule hitting ``route`` now and the status it answers with, if any."""
        with self._lock:
            for rule in self.rules:
                status = rule.take(route)
                if status is not None:
                    return rule, status
        return None

    def clear(self) -> None:
        """Deactivate every rule."""
        with self._lock:
            self.rules.clear()
