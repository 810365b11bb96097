"""Keeping secrets out of files, logs and messages: by key name and by value.

Two rules work together:

- **by name**: a mapping value under a secret-looking key (``api_key``, ``password``, ``hf_token``…)
  is replaced by :data:`REDACTED` wherever :func:`redact` writes a mapping (the run manifest);
- **by value**: every secret *value* this process has seen configured — options declared
  ``secret=True``, values under secret-looking keys, a key pasted into a ``*_env`` field, the
  value of the environment variable a ``*_env`` field names, the API key a client was built
  with — is registered with :func:`add_secret` (done by ``parse_config``, ``validate_options``
  and the OpenAI client). :func:`scrub` replaces those values, and anything shaped like a
  well-known API key (``sk-…``, ``hf_…``, ``ghp_…``, ``AKIA…``), in any text: error messages,
  the CLI's output (also with ``--debug``), progress lines and the files a run writes.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Collection, Mapping

_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|passw|credential|authori[sz]ation|bearer|private[_-]?key|(^|[_-])token$)", re.IGNORECASE
)
#: Names that look secret but hold none (the *name* of the variable holding a key).
NOT_SECRET = frozenset({"api_key_env"})
REDACTED = "<redacted>"
#: Shapes of well-known API keys and tokens, scrubbed from messages even when never configured.
KEY_SHAPES = re.compile(
    r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic, Stripe style
    r"|\b(?:hf|ghp|gho|ghs|ghu|github_pat|glpat|xox[abprs])[-_][A-Za-z0-9_\-]{16,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"  # JWT
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: Shorter values are never registered: replacing them would garble ordinary words.
MIN_SECRET_LENGTH = 6

_KNOWN: set[str] = set()
_KNOWN_SORTED: list[str] = []  # longest first, so a secret containing another is replaced whole
_LOCK = threading.Lock()


def is_secret_key(name: object) -> bool:
    """Whether a mapping key or option name looks like it holds a secret (``api_key``, ``password``…)."""
    return str(name).lower() not in NOT_SECRET and bool(_SECRET_KEY.search(str(name)))


def looks_like_key(value: object) -> bool:
    """Whether ``value`` is a string shaped like a well-known API key or token."""
    return isinstance(value, str) and KEY_SHAPES.fullmatch(value.strip()) is not None


def is_env_var_name(value: object) -> bool:
    """Whether ``value`` can be the *name* of an environment variable (and is not a key)."""
    return isinstance(value, str) and _ENV_NAME.fullmatch(value) is not None and not looks_like_key(value)


def _looks_random(value: str) -> bool:
    """A long name mixing lower-case letters and digits: more like a key than a variable name."""
    return len(value) >= 20 and any(c.isdigit() for c in value) and any(c.islower() for c in value)


def add_secret(value: object) -> None:
    """Register a secret value: from now on :func:`scrub` replaces it in any text."""
    if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    with _LOCK:
        for form in {value, value.strip()}:
            if form not in _KNOWN:
                _KNOWN.add(form)
                _KNOWN_SORTED[:] = sorted(_KNOWN, key=len, reverse=True)


def collect_secrets(data: Any, secret_fields: Collection[str] = ()) -> None:
    """Register the secret values in a (nested) options or config mapping.

    Secret are: values of ``secret_fields`` and of secret-looking keys; a ``*_env`` field's
    value when it is not a variable *name* or looks random (a key pasted there), and the value
    of the environment variable it names; and any string shaped like a well-known key.
    """
    if isinstance(data, Mapping):
        for key, value in data.items():
            name = str(key)
            if name in secret_fields or is_secret_key(name):
                _add_all(value)
            elif name.endswith("_env") and isinstance(value, str):
                if not is_env_var_name(value) or _looks_random(value):
                    add_secret(value)  # a key pasted where a variable name belongs
                if is_env_var_name(value):
                    add_secret(os.environ.get(value))
            else:
                collect_secrets(value)
    elif isinstance(data, (list, tuple)):
        for value in data:
            collect_secrets(value)
    elif looks_like_key(data):
        add_secret(data)


def _add_all(value: Any) -> None:
    if isinstance(value, Mapping):
        for item in value.values():
            _add_all(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _add_all(item)
    elif value is not None and not isinstance(value, bool):
        add_secret(str(value))


def scrub_known(text: str) -> str:
    """``text`` with every registered secret value replaced by :data:`REDACTED`."""
    for secret in _KNOWN_SORTED:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub(text: str) -> str:
    """``text`` with registered secret values and well-known key shapes replaced by :data:`REDACTED`."""
    return KEY_SHAPES.sub(REDACTED, scrub_known(text))


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking mapping key's value replaced, and every
    string scrubbed of secret values (:func:`scrub`)."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value
