"""Row cleaning: text normalisation and the rules that drop rows, with a count per rule."""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any, Iterable, Iterator, Sequence

from finetunekit.data.reports import CleanReport

@dataclasses.dataclass(frozen=True)
class CleaningRules:
    """A named set of corpus-specific cleaning rules, registered through ``register_cleaning_rules``.

    ``junk_contents``: contents that say nothing (strings compared with the whole cleaned
    content ignoring case, or compiled patterns matched fully); such rows are dropped.
    ``remove_patterns``: patterns cut out of every text field (e.g. a corpus's boilerplate
    notes) before the other rules run.
    """

    name: str
    junk_contents: tuple[str | re.Pattern[str], ...] = ()
    remove_patterns: tuple[re.Pattern[str], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("cleaning rules need a non-empty name")
        object.__setattr__(self, "junk_contents", _checked_junk(self.junk_contents))
        patterns = tuple(re.compile(p) if isinstance(p, str) else p for p in self.remove_patterns)
        if not all(isinstance(p, re.Pattern) for p in patterns):
            raise ValueError(f"remove_patterns must be regular expressions, got {self.remove_patterns!r}")
        object.__setattr__(self, "remove_patterns", patterns)


def _checked_junk(junk: Iterable[Any] | None) -> tuple[str | re.Pattern[str], ...]:
    from finetunekit.errors import ConfigError

    items = tuple(junk or ())
    for item in items:
        if not isinstance(item, (str, re.Pattern)):
            raise ConfigError(f"junk_contents entries must be strings or compiled patterns, got {item!r}")
    return items


RULES = ("missing_required", "too_short", "junk_content", "duplicate_title")

#: Passes after which normalisation stops even if it still changes the text (it never should).
_MAX_PASSES = 10


def normalize_text(text: str, remove: re.Pattern[str] | None = None) -> str:
    """Unescape HTML entities, cut out what ``remove`` matches, collapse whitespace; repeat until stable.

    Repeating makes it idempotent (``normalize_text(normalize_text(s)) == normalize_text(s)``),
    which also unescapes double-escaped entities such as ``&amp;#39;``. Text that needs no
    change is returned as the same object (a fast path: most of a corpus needs none).
    """
    if (
        "&" not in text
        and "  " not in text
        and text.isprintable()  # so no whitespace but " ": all other whitespace is unprintable
        and text[:1] != " "
        and text[-1:] != " "
        and (remove is None or remove.search(text) is None)
    ):
        return text
    for _ in range(_MAX_PASSES):
        once = _normalize_once(text, remove)
        if once == text:
            return text
        text = once
        if "&" not in text and remove is None:
            return text  # whitespace collapsing alone is stable: no further pass can change it
    return text


def _normalize_once(text: str, remove: re.Pattern[str] | None) -> str:
    if "&" in text:
        text = html.unescape(text)
    if remove is not None:
        text = remove.sub(" ", text)
    if "  " in text or text[:1] == " " or text[-1:] == " " or not text.isprintable():
        return " ".join(text.split())
    return text  # no whitespace but single inner spaces (all other whitespace is unprintable)


@dataclasses.dataclass(frozen=True)
class CleanOptions:
    """The cleaning rules, as passed to ``Dataset.clean``."""

    min_content_length: int = 0
    required: tuple[str, ...] = ("title", "content")
    drop_duplicate_titles: bool = True
    junk_contents: tuple[str | re.Pattern[str], ...] = ()
    title_field: str = "title"
    content_field: str = "content"
    remove_patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def build(
        cls,
        *,
        min_content_length: int = 0,
        required: Sequence[str] | str = ("title", "content"),
        drop_duplicate_titles: bool = True,
        junk_contents: Iterable[str | re.Pattern[str]] | None = (),
        title_field: str = "title",
        content_field: str = "content",
        rules: Sequence[CleaningRules] = (),
    ) -> CleanOptions:
        """Validated options (a single ``required`` name is accepted; ``None`` junk means none);
        each of ``rules`` adds its junk contents and remove patterns."""
        from finetunekit.errors import ConfigError

        if isinstance(min_content_length, bool) or not isinstance(min_content_length, int) or min_content_length < 0:
            raise ConfigError(f"min_content_length must be a non-negative integer, got {min_content_length!r}")
        required = (required,) if isinstance(required, str) else tuple(required)
        junk = _checked_junk(junk_contents) + tuple(j for r in rules for j in r.junk_contents)
        remove = tuple(p for r in rules for p in r.remove_patterns)
        return cls(min_content_length, required, bool(drop_duplicate_titles), junk, title_field, content_field, remove)


class Cleaner:
    """Applies :class:`CleanOptions` to a stream of rows, counting into a :class:`CleanReport`.

    One cleaner serves one pass: it remembers the titles it has seen to drop duplicates.
    """

    def __init__(self, options: CleanOptions, report: CleanReport) -> None:
        self.options = options
        self.report = report
        self._seen_titles: set[str] = set()
        self._junk_exact = {normalize_text(j).casefold() for j in options.junk_contents if isinstance(j, str)}
        self._junk_max_length = max(map(len, self._junk_exact), default=0)
        patterns = [j for j in options.junk_contents if isinstance(j, re.Pattern)]
        self._junk_pattern = _any_of(patterns) if patterns else None
        self._remove = _any_of(list(options.remove_patterns)) if options.remove_patterns else None

    @property
    def junk_max_length(self) -> int:
        """The longest content the exact junk contents could equal (0: none configured)."""
        return self._junk_max_length

    def apply(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Yield the cleaned rows that pass every rule (new dicts; the input is not modified)."""
        report = self.report
        for row in rows:
            cleaned = self.normalize(row)
            rule = self.rule_broken(cleaned)
            if rule is None:
                rule = self.duplicate(self.title_key(cleaned))
            if rule is not None:
                report.remove(rule)
                continue
            report.rows_out += 1
            yield cleaned
        report.complete = True

    def normalize(self, row: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``row`` with every string normalised; counts the row in (and as normalised if so)."""
        report = self.report
        report.rows_in += 1
        cleaned = row.copy()
        changed = False
        remove = self._remove
        for key, value in row.items():
            if type(value) is str:
                new = normalize_text(value, remove)
                if new is not value:
                    cleaned[key] = new
                    changed = True
        if changed:
            report.text_normalized += 1
        return cleaned

    def rule_broken(self, row: dict[str, Any]) -> str | None:
        """The first rule that needs no memory of other rows that ``row`` breaks, or ``None``.

        Every rule but ``duplicate_title``, which :meth:`duplicate` checks on :meth:`title_key`.
        """
        options = self.options
        for field in options.required:
            value = row.get(field)
            if value is None or value == "":
                return "missing_required"
        content = row.get(options.content_field)
        if isinstance(content, str):
            if len(content) < options.min_content_length:
                return "too_short"
            if content and self._is_junk(content):
                return "junk_content"
        return None

    def title_key(self, row: dict[str, Any]) -> str | None:
        """What ``row``'s title is compared by to find duplicates (``None``: never a duplicate)."""
        if not self.options.drop_duplicate_titles:
            return None
        title = row.get(self.options.title_field)
        return title.casefold() if isinstance(title, str) and title else None

    def duplicate(self, key: str | None) -> str | None:
        """``"duplicate_title"`` if ``key`` was seen before, else ``None`` (and ``key`` is remembered)."""
        if key is None:
            return None
        if key in self._seen_titles:
            return "duplicate_title"
        self._seen_titles.add(key)
        return None

    def first_seen(self, keys: list[str | None]) -> list[int]:
        """The indexes of ``keys`` that :meth:`duplicate` would let through, in order (and remembers them)."""
        seen = self._seen_titles
        remember = seen.add
        return [i for i, key in enumerate(keys) if key is None or not (key in seen or remember(key))]

    def _is_junk(self, content: str) -> bool:
        if len(content) <= self._junk_max_length and content.casefold() in self._junk_exact:
            return True
        return self._junk_pattern is not None and self._junk_pattern.fullmatch(content) is not None


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern matching what any of ``patterns`` matches (each keeps its own flags)."""
    parts = []
    for pattern in patterns:
        flags = "".join(f for f, bit in _SCOPED_FLAGS if pattern.flags & bit)
        source = _GLOBAL_FLAGS.sub("", pattern.pattern)  # "(?i)abc": pattern.flags carries them
        ending = "\n" if pattern.flags & re.VERBOSE else ""  # a verbose pattern's last comment ends here
        parts.append(f"(?{flags}:{source}{ending})")
    return re.compile("|".join(parts))


#: Global inline flags at a pattern's start, which an alternation may not hold inside a group.
_GLOBAL_FLAGS = re.compile(r"\A(?:\(\?[aiLmsux]+\))+")

#: The flags a pattern keeps inside :func:`_any_of`'s alternation.
_SCOPED_FLAGS = (("i", re.IGNORECASE), ("s", re.DOTALL), ("m", re.MULTILINE), ("x", re.VERBOSE), ("a", re.ASCII))
