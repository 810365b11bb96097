"""A chunk's scan through the compiled line kernel, with the Python path for the lines it leaves.

:func:`scan_with_kernel` gives the :class:`~finetunekit.data.scan.ChunkResult` that
:func:`~finetunekit.data.scan.scan_lines` gives for the whole chunk: the kernel
(:mod:`~finetunekit.data.line_kernel`) reads every line, keeps or removes the lines it can judge
exactly, and the Python path reads the others; counts are added, the survivors merged in line order.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from array import array
from typing import TYPE_CHECKING, Any

import numpy as np

from finetunekit.data.cleaning import Cleaner, CleanOptions
from finetunekit.data.reports import CleanReport
from finetunekit.data.rows import ROW_ID_FIELD

if TYPE_CHECKING:
    from finetunekit.data.scan import ChunkResult, ScanPlan


@dataclasses.dataclass(frozen=True)
class KernelPlan:
    """The cleaning options as the kernel reads them."""

    fields: np.ndarray  # the field names the rules read, joined (UTF-8 bytes)
    field_ends: np.ndarray
    required: np.ndarray  # per field: 1 if required
    title: int  # index into the fields
    content: int
    min_length: int
    junk_max: int  # contents this short go to the Python path (exact junk strings, bounded junk patterns)
    keys_wanted: bool
    plain: np.ndarray  # per byte: 1 if normalisation copies it as it is (not a literal's first byte)
    guard: np.ndarray  # per code point: 1 if a remove pattern's literal holds it
    literals: np.ndarray  # the remove patterns' literal starts (UTF-8, joined)
    literal_ends: np.ndarray
    prefixes: np.ndarray  # the unbounded junk patterns' literal starts (UTF-8, joined)
    prefix_ends: np.ndarray


def kernel_plan(plan: ScanPlan) -> KernelPlan | None:
    """How the kernel reads ``plan``'s rules, or ``None`` where it is not to be used or cannot give
    the same result: ``plan.compiled`` off, no cleaning, renamed columns, patterns it cannot bound (see :func:`pattern_guards`), a field
    name that is not plain printable ASCII, or no working kernel here (numba not installed, or it
    fails to import or compile: then a warning says so once). The first call in a process compiles
    the kernel (or loads it from numba's cache): a process forked afterwards inherits it."""
    options = plan.clean
    if not plan.compiled or options is None or plan.columns is not None or not _kernel_works():
        return None
    return _settings(options)


def _settings(options: CleanOptions) -> KernelPlan | None:
    cleaner = Cleaner(options, CleanReport())
    names = list(dict.fromkeys([*options.required, options.title_field, options.content_field]))
    junk_patterns = tuple(j for j in options.junk_contents if isinstance(j, re.Pattern))
    guards = pattern_guards(options.remove_patterns, junk_patterns)
    if guards is None or ROW_ID_FIELD in names or not all(map(_plain_name, names)):
        return None
    if guards.prefixes and options.title_field == options.content_field and options.drop_duplicate_titles:
        return None  # the kernel writes that field lower-cased for the key, the junk prefixes need it as it is
    guard = np.zeros(_line_kernel().CODE_LIMIT, dtype=np.uint8)
    for char in "".join(guards.literals):
        if ord(char) < len(guard):
            guard[ord(char)] = 1
    literals, literal_ends = _joined(guards.literals)
    plain = _line_kernel().PLAIN_BYTES.copy()
    plain[[literal.encode("utf-8")[0] for literal in guards.literals]] = 0
    prefixes, prefix_ends = _joined(guards.prefixes)
    fields, field_ends = _joined(tuple(names))
    return KernelPlan(
        fields=fields,
        field_ends=field_ends,
        required=np.array([name in set(options.required) for name in names], dtype=np.uint8),
        title=names.index(options.title_field),
        content=names.index(options.content_field),
        min_length=min(options.min_content_length, 2**62),  # longer than any text; fits the kernel's int64
        junk_max=max(cleaner.junk_max_length, guards.junk_width),
        keys_wanted=options.drop_duplicate_titles,
        plain=plain,
        guard=guard,
        literals=literals,
        literal_ends=literal_ends,
        prefixes=prefixes,
        prefix_ends=prefix_ends,
    )


def _joined(texts: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` as the kernel reads them: their UTF-8 bytes joined, and each one's end offset."""
    encoded = [text.encode("utf-8") for text in texts]
    joined = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
    return joined, np.cumsum([len(text) for text in encoded], dtype=np.int64)


#: Junk patterns that can match a longer content than this need a literal prefix for the kernel.
_JUNK_WIDTH_MAX = 200


@dataclasses.dataclass(frozen=True)
class PatternGuards:
    """What the kernel checks so that a line no pattern could touch needs no regular expression.

    ``literals``: the literal each remove pattern's match starts with (a line with a top-level
    string where one starts, or whose escapes or entities decode to one of their characters, goes
    to the Python path); ``junk_width``: the longest content a bounded junk pattern can match
    (contents as short go there too); ``prefixes``: the literal each unbounded junk pattern's match
    starts with (a content that starts with one goes there)."""

    literals: tuple[str, ...] = ()
    junk_width: int = 0
    prefixes: tuple[str, ...] = ()


def pattern_guards(remove: tuple[re.Pattern[str], ...], junk: tuple[re.Pattern[str], ...]) -> PatternGuards | None:
    """The guards for these patterns, or ``None`` where the kernel cannot bound them (a remove
    pattern without a literal start, or with whitespace in it or ignoring case; an unbounded junk
    pattern without a case-sensitive literal start)."""
    literals, prefixes, width = [], [], 0
    for pattern in remove:
        literal = _literal_start(pattern)
        if not literal or any(char.isspace() for char in literal):
            return None
        literals.append(literal)
    for pattern in junk:
        longest = _parse(pattern).getwidth()[1]
        if longest <= _JUNK_WIDTH_MAX:
            width = max(width, longest)
            continue
        prefix = _literal_start(pattern)
        if not prefix:
            return None
        prefixes.append(prefix)
    return PatternGuards(tuple(literals), width, tuple(prefixes))


def _literal_start(pattern: re.Pattern[str]) -> str:
    """The characters every match of ``pattern`` starts with ("" if none are certain, or if it ignores case)."""
    if pattern.flags & re.IGNORECASE:
        return ""
    chars = []
    for op, value in _parse(pattern):
        if str(op) != "LITERAL":
            break
        chars.append(chr(value))
    return "".join(chars)


def _parse(pattern: re.Pattern[str]) -> Any:
    try:
        import re._parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse  # type: ignore[no-redef]
    return sre_parse.parse(pattern.pattern, pattern.flags)


def scan_with_kernel(plan: ScanPlan, settings: KernelPlan, data: bytes, first_line: int) -> ChunkResult:
    """``scan_lines`` over the whole chunk, the kernel taking the lines it can."""
    from finetunekit.data.scan import ChunkLines, PickedLines, scan_lines

    line_kernel = _line_kernel()
    lines, starts, fates, changed, no_key, blob = _run_kernel(settings, data)
    python_lines = np.flatnonzero(fates == line_kernel.PYTHON)
    result = scan_lines(plan, PickedLines(data, first_line, starts, python_lines.tolist()))
    if result.failed:  # a bad line: the Python path's own result for the chunk, stopped at it
        result = scan_lines(plan, ChunkLines(data, first_line))
        result.failed, result.lines = True, lines
        return result
    result.lines = lines
    compiled = lines - len(python_lines)
    result.load.rows += compiled
    clean = result.clean
    clean.rows_in += compiled
    clean.text_normalized += int(np.count_nonzero(changed))
    _add_removed(result, fates, first_line)
    kept = np.flatnonzero(fates == line_kernel.KEPT)
    if settings.keys_wanted:
        keys: list[str | None] = blob.decode("utf-8").split("\n")[:-1]
        for index in np.flatnonzero(no_key[kept]).tolist():
            keys[index] = None
    else:
        keys = [None] * len(kept)
    _merge_survivors(result, keys, kept, starts[kept], first_line)
    return result


def kernel_fates(settings: KernelPlan, data: bytes) -> np.ndarray:
    """Each line's fate as the kernel judges it (``line_kernel.PYTHON``: left to the Python path)."""
    return _run_kernel(settings, data)[2]


def _run_kernel(settings: KernelPlan, data: bytes) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bytes]:
    """The kernel over ``data``: lines, and per line its start, fate, changed and no-key flags; the keys' bytes."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    lines_max = len(newlines) + 1
    starts = np.empty(lines_max, dtype=np.int64)
    fates = np.empty(lines_max, dtype=np.uint8)
    changed = np.empty(lines_max, dtype=np.uint8)
    no_key = np.empty(lines_max, dtype=np.uint8)
    blob = np.empty(len(data) + 1, dtype=np.uint8)
    names, name_ends, codes = _entities()
    lines, used = _line_kernel().scan(
        buf, newlines, settings.fields, settings.field_ends, settings.required,
        settings.title, settings.content, settings.min_length, settings.junk_max, settings.keys_wanted,
        names, name_ends, codes, settings.plain, settings.guard, settings.literals, settings.literal_ends,
        settings.prefixes, settings.prefix_ends, starts, fates, changed, no_key, blob,
    )  # fmt: skip
    return lines, starts[:lines], fates[:lines], changed[:lines], no_key[:lines], bytes(blob[:used])


def _add_removed(result: ChunkResult, fates: np.ndarray, first_line: int) -> None:
    """Add the kernel's removals to the Python path's, each rule in the order of its first removal."""
    line_kernel = _line_kernel()
    first = dict(result.first_removed)
    counts = dict(result.clean.removed)
    for rule, fate in (("missing_required", line_kernel.MISSING_REQUIRED), ("too_short", line_kernel.TOO_SHORT)):
        hits = fates == fate
        count = int(np.count_nonzero(hits))
        if count:
            line = first_line + int(np.argmax(hits))
            first[rule] = min(first.get(rule, line), line)
            counts[rule] = counts.get(rule, 0) + count
    result.first_removed = first
    result.clean.removed = {rule: counts[rule] for rule in sorted(counts, key=first.__getitem__)}


def _merge_survivors(result: ChunkResult, keys: list[str | None], kept: np.ndarray, starts: np.ndarray, first_line: int) -> None:
    """The kernel's survivors and the Python path's, in line order, into ``result``."""
    numbers = kept + first_line
    if result.keys:
        python_numbers = np.frombuffer(result.line_numbers, dtype=np.int64)
        order = np.argsort(np.concatenate([numbers, python_numbers]), kind="stable")
        every_key = keys + result.keys
        keys = [every_key[i] for i in order.tolist()]
        starts = np.concatenate([starts, np.frombuffer(result.starts, dtype=np.int64)])[order]
        numbers = np.concatenate([numbers, python_numbers])[order]
    result.keys = keys
    result.starts = _int_array(starts)
    result.line_numbers = _int_array(numbers)


def _int_array(values: np.ndarray) -> array:
    out = array("q")
    out.frombytes(values.astype(np.int64).tobytes())
    return out


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and name.isascii() and name.isprintable() and '"' not in name and "\\" not in name


@functools.lru_cache(maxsize=1)
def _entities() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _line_kernel().entity_table()


@functools.lru_cache(maxsize=1)
def _line_kernel() -> Any:
    """The kernel's module, or ``None`` when numba is not installed or fails to import here."""
    try:
        from finetunekit.data import line_kernel
    except ImportError:
        return None
    except Exception as exc:  # noqa: BLE001 - e.g. numba against a numpy it does not support
        _warn_off(exc)
        return None
    return line_kernel


@functools.lru_cache(maxsize=1)
def _kernel_works() -> bool:
    """Whether the kernel runs here: numba compiles it (or loads it from its cache) on this first call."""
    if _line_kernel() is None:
        return False
    try:
        _run_kernel(_settings(CleanOptions()), b"{}\n")
    except Exception as exc:  # noqa: BLE001 - a compiler failure must not stop loading
        _warn_off(exc)
        return False
    return True


def _warn_off(exc: Exception) -> None:
    warnings.warn(f"the compiled line kernel is off ({type(exc).__name__}: {exc}); loading takes the Python path (slower, same rows)", stacklevel=3)
