"""Reports kept while a dataset is read and cleaned: what came in, what was dropped and why."""

from __future__ import annotations

import dataclasses
from typing import Any

from finetunekit.errors import DataError

ON_ERROR_CHOICES = ("raise", "skip")

#: How many skipped-record messages a report keeps verbatim (the counts are always complete).
MAX_KEPT_MESSAGES = 5


@dataclasses.dataclass
class LoadReport:
    """What one pass over a source read: records seen, rows produced, records skipped per reason.

    ``on_error`` decides what :meth:`reject` does with a malformed record: ``"raise"`` raises
    the :class:`~finetunekit.errors.DataError`, ``"skip"`` counts it under its reason and keeps
    the first few messages in ``messages``.
    """

    source: str = ""
    format: str = ""
    on_error: str = "raise"
    lines_read: int = 0
    rows: int = 0
    blank_lines: int = 0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    messages: list[str] = dataclasses.field(default_factory=list)
    complete: bool = False

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR_CHOICES:
            raise DataError(
                f"on_error must be one of {', '.join(map(repr, ON_ERROR_CHOICES))}, "
                f"got {self.on_error!r}"
            )

    def reject(self, error: DataError, reason: str) -> None:
        """Raise ``error``, or (with ``on_error="skip"``) count it under ``reason``."""
        if self.on_error == "raise":
            raise error
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.messages) < MAX_KEPT_MESSAGES:
            self.messages.append(str(error))

    @property
    def skipped_total(self) -> int:
        """All records skipped, whatever the reason."""
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for manifests and logs)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        state = "" if self.complete else " (partial pass)"
        return (
            f"{self.source} [{self.format}]: {self.lines_read} lines read, {self.rows} rows, "
            f"skipped {skipped}{state}"
        )


@dataclasses.dataclass
class CleanReport:
    """Rows in, rows removed per cleaning rule, rows out, and rows whose text was normalised."""

    rows_in: int = 0
    removed: dict[str, int] = dataclasses.field(default_factory=dict)
    rows_out: int = 0
    text_normalized: int = 0
    complete: bool = False

    def remove(self, rule: str) -> None:
        """Count one row removed by ``rule``."""
        self.removed[rule] = self.removed.get(rule, 0) + 1

    @property
    def removed_total(self) -> int:
        """All rows removed, whatever the rule."""
        return sum(self.removed.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for manifests and logs)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [f"rows in: {self.rows_in}"]
        lines += [f"  removed ({rule}): {n}" for rule, n in sorted(self.removed.items())]
        lines.append(f"rows out: {self.rows_out} (text normalised in {self.text_normalized})")
        if not self.complete:
            lines.append("(partial pass)")
        return "\n".join(lines)
