"""Keeping secrets out of files, logs and messages: which keys are secret, and redaction."""

from __future__ import annotations

import re
from typing import Any

_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|passw|credential|authori[sz]ation|bearer|private[_-]?key|(^|[_-])token$)", re.IGNORECASE
)
#: Names that look secret but hold none (the *name* of the variable holding a key).
NOT_SECRET = frozenset({"api_key_env"})
REDACTED = "<redacted>"


def is_secret_key(name: object) -> bool:
    """Whether a mapping key or option name looks like it holds a secret (``api_key``, ``password``…)."""
    return str(name).lower() not in NOT_SECRET and bool(_SECRET_KEY.search(str(name)))


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking mapping key's value replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
