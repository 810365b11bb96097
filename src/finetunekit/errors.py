"""Typed exceptions. Every message says what was wrong, where, and what was expected."""

from __future__ import annotations

from pathlib import Path

from finetunekit.redaction import scrub


class FinetunekitError(Exception):
    """Base class of every error this library raises on purpose.

    Text arguments are scrubbed of secret values (:func:`finetunekit.redaction.scrub`), so no
    message of ours carries a configured API key, whoever prints it.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(scrub(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(FinetunekitError, ValueError):
    """A configuration or option value is invalid."""


class TemplateError(FinetunekitError, ValueError):
    """A prompt or response template is malformed or unsafe, or a row lacks one of its fields."""


class DataError(FinetunekitError, ValueError):
    """Input data is malformed. Carries the file, line, column and field when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        self.message = message = scrub(message)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def __reduce__(self):  # keep path/line/column/field across pickling (worker processes)
        return (_rebuild_data_error, (type(self), self.message, self.path, self.line, self.column, self.field))


def _rebuild_data_error(cls, message, path, line, column, field):  # type: ignore[no-untyped-def]
    return cls(message, path=path, line=line, column=column, field=field)


class MissingDependencyError(FinetunekitError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""

    def __init__(self, what: str, install: str) -> None:
        self.what, self.install = what, install
        super().__init__(f"{what} is not installed. Install it with: {install}")

    def __reduce__(self):  # picklable despite the two-argument constructor
        return (type(self), (self.what, self.install))


class TrainingError(FinetunekitError, RuntimeError):
    """A fine-tuning run failed or was cancelled."""
