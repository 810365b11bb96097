"""A compiled pass over a chunk of JSON Lines for the scan's common case (numba, extra ``fast``).

It reads each line's bytes once: checks the line is one JSON object as ``orjson`` reads it,
normalises its top-level strings as :func:`~finetunekit.data.cleaning.normalize_text` would, and
applies the cleaning rules that need no memory of other rows. It takes on only what it can do
exactly and hands every other line to the Python path (:func:`~finetunekit.data.scan.scan_chunk`'s
own code): a line with a byte outside printable ASCII, an escape other than ``\\"``, a duplicate
key, an entity outside a short table (or one whose ``&`` a second unescaping pass could read),
a number ``orjson`` might refuse, a blank or broken line, a string a cleaning pattern could touch
(see :func:`~finetunekit.data.kernel_scan.pattern_guards`). Those lines keep their exact errors and
counts; the compiled lines give the same counts and title keys by construction, which the tests
check against the Python path line by line.
"""

from __future__ import annotations

import html.entities
from typing import Any

import numba
import numpy as np

#: Named entities the kernel decodes (each must end with ``;``), as ``html.unescape`` decodes them.
NAMED_ENTITIES = (
    "amp", "lt", "gt", "quot", "apos", "nbsp", "ensp", "emsp", "thinsp", "rsquo", "lsquo", "rdquo", "ldquo",
    "sbquo", "bdquo", "ndash", "mdash", "hellip", "bull", "middot", "copy", "reg", "trade", "deg", "plusmn",
    "times", "divide", "frac12", "frac14", "frac34", "laquo", "raquo", "euro", "pound", "yen", "cent", "sect",
    "para", "iexcl", "iquest", "eacute", "egrave", "ecirc", "euml", "aacute", "agrave", "acirc", "atilde",
    "auml", "aring", "aelig", "ccedil", "iacute", "igrave", "icirc", "iuml", "ntilde", "oacute", "ograve",
    "ocirc", "otilde", "ouml", "oslash", "uacute", "ugrave", "ucirc", "uuml", "yacute", "yuml", "Eacute",
    "Egrave", "Aacute", "Agrave", "Auml", "Ccedil", "Ntilde", "Oacute", "Ouml", "Uacute", "Uuml",
)

#: Entities for code points below this may be decoded by the kernel (see :data:`FOLD`).
CODE_LIMIT = 0x2200

#: Kinds of a field's value in a line, as the kernel reports them.
MISSING, NULL, STRING, OTHER = 0, 1, 2, 3
#: A line's fate: left to the Python path, kept, or removed by a rule.
PYTHON, KEPT, MISSING_REQUIRED, TOO_SHORT = 0, 1, 2, 3

_MAX_KEYS = 64  # top-level keys a line may have (more: the Python path)
_MAX_DEPTH = 64  # nesting the kernel follows (orjson allows more: the Python path)
_MAX_NUMBER = 40  # characters in a number (longer: the Python path, which knows orjson's limits)


def fold_table() -> np.ndarray:
    """Per code point below :data:`CODE_LIMIT`: what the kernel writes for it in a title key, 32 for
    whitespace, or -1 where an entity for it stays with the Python path.

    Built from Python itself: a code point is taken if ``html.unescape`` decodes ``&#N;`` to it
    (not to a replacement) and it is whitespace (``str.split`` splits there) or printable with a
    one-character ``casefold``. ``&`` is left out: see :func:`normalize`.
    """
    fold = np.full(CODE_LIMIT, -1, dtype=np.int64)
    for code in range(1, CODE_LIMIT):
        char = chr(code)
        if code == 0x26 or html.unescape(f"&#{code};") != char:
            continue
        if char.isspace():
            fold[code] = 32
        elif char.isprintable() and len(char.casefold()) == 1:
            fold[code] = ord(char.casefold())
    return fold


#: The kernel's table of code points (see :func:`fold_table`).
FOLD = fold_table()


def entity_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The named entities as the kernel reads them: names (bytes, joined), their end offsets, code points.

    ``&amp;`` is the one entity for ``&``: the kernel reads what follows it as the next pass would."""
    names, ends, codes = bytearray(), [], []
    for name in NAMED_ENTITIES:
        value = html.entities.html5[name + ";"]
        if len(value) == 1 and (value == "&" or (ord(value) < CODE_LIMIT and FOLD[ord(value)] >= 0)):
            names += name.encode("ascii")
            ends.append(len(names))
            codes.append(ord(value))
    return np.frombuffer(bytes(names), dtype=np.uint8), np.array(ends, dtype=np.int64), np.array(codes, dtype=np.int64)


def _byte_table(*ranges: tuple[int, int], but: bytes = b"") -> np.ndarray:
    table = np.zeros(256, dtype=np.uint8)
    for low, high in ranges:
        table[low : high + 1] = 1
    table[list(but)] = 0
    return table


#: Bytes a string may hold as they are (printable ASCII but the quote and the backslash).
STRING_BYTES = _byte_table((32, 126), but=b'"\\')
#: Bytes normalisation copies as they are (printable ASCII but space, quote, backslash and "&").
PLAIN_BYTES = _byte_table((33, 126), but=b'"\\&')

jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def skip_ws(buf: Any, i: int, end: int) -> int:
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
        i += 1
    return i


@jit
def skip_string(buf: Any, i: int, end: int) -> int:
    """``i`` at an opening quote: the index after the closing one, or -1 (not for the kernel)."""
    i += 1
    while i < end:
        while i < end and STRING_BYTES[buf[i]]:
            i += 1
        if i >= end:
            return -1
        c = buf[i]
        if c == 34:
            return i + 1
        if c == 92:
            if i + 1 < end and buf[i + 1] == 34:
                i += 2
                continue
            return -1
        if c < 32 or c > 126:
            return -1
        i += 1
    return -1


@jit
def skip_number(buf: Any, i: int, end: int) -> int:
    start = i
    if i < end and buf[i] == 45:
        i += 1
    if i >= end or not (48 <= buf[i] <= 57):
        return -1
    if buf[i] == 48:
        i += 1
    else:
        while i < end and 48 <= buf[i] <= 57:
            i += 1
    if i < end and buf[i] == 46:
        i += 1
        if i >= end or not (48 <= buf[i] <= 57):
            return -1
        while i < end and 48 <= buf[i] <= 57:
            i += 1
    if i < end and (buf[i] == 101 or buf[i] == 69):
        i += 1
        if i < end and (buf[i] == 43 or buf[i] == 45):
            i += 1
        digits = i
        while i < end and 48 <= buf[i] <= 57:
            i += 1
        if i == digits or i - digits > 2:
            return -1
    if i - start > _MAX_NUMBER:
        return -1
    return i


@jit
def skip_literal(buf: Any, i: int, end: int) -> int:
    c = buf[i]
    if c == 116:  # true
        word = (116, 114, 117, 101)
    elif c == 102:  # false
        if i + 5 <= end and buf[i + 1] == 97 and buf[i + 2] == 108 and buf[i + 3] == 115 and buf[i + 4] == 101:
            return i + 5
        return -1
    else:  # null
        word = (110, 117, 108, 108)
    if i + 4 <= end and buf[i] == word[0] and buf[i + 1] == word[1] and buf[i + 2] == word[2] and buf[i + 3] == word[3]:
        return i + 4
    return -1


@jit
def skip_scalar(buf: Any, i: int, end: int) -> int:
    c = buf[i]
    if c == 34:
        return skip_string(buf, i, end)
    if c == 45 or 48 <= c <= 57:
        return skip_number(buf, i, end)
    if c == 116 or c == 102 or c == 110:
        return skip_literal(buf, i, end)
    return -1


@jit
def skip_key(buf: Any, i: int, end: int) -> int:
    """``i`` at an object member's key: the index after its colon, or -1."""
    if i >= end or buf[i] != 34:
        return -1
    i = skip_string(buf, i, end)
    if i < 0:
        return -1
    i = skip_ws(buf, i, end)
    if i >= end or buf[i] != 58:
        return -1
    return i + 1


@jit
def skip_value(buf: Any, i: int, end: int, stack: Any) -> int:
    """A whole JSON value from ``i``: the index after it, or -1."""
    depth = 0
    while True:
        # a value is expected at i
        i = skip_ws(buf, i, end)
        if i >= end:
            return -1
        c = buf[i]
        if c == 123 or c == 91:
            i = skip_ws(buf, i + 1, end)
            if i >= end:
                return -1
            if buf[i] == c + 2:  # {} or []
                i += 1
            else:
                if depth == _MAX_DEPTH:
                    return -1
                stack[depth] = c
                depth += 1
                if c == 123:
                    i = skip_key(buf, i, end)
                    if i < 0:
                        return -1
                continue
        elif 49 <= c <= 57:  # the common case first: a plain number, without skip_number's checks
            j = i + 1
            while j < end and 48 <= buf[j] <= 57:
                j += 1
            if j + 1 < end and buf[j] == 46 and 48 <= buf[j + 1] <= 57:
                j += 2
                while j < end and 48 <= buf[j] <= 57:
                    j += 1
            if j - i > _MAX_NUMBER or (j < end and (buf[j] == 46 or buf[j] == 101 or buf[j] == 69)):
                j = skip_number(buf, i, end)
                if j < 0:
                    return -1
            i = j
        else:
            i = skip_scalar(buf, i, end)
            if i < 0:
                return -1
        # a value ended at i: close containers, or expect the next value
        while True:
            if depth == 0:
                return i
            i = skip_ws(buf, i, end)
            if i >= end:
                return -1
            c = buf[i]
            top = stack[depth - 1]
            if c == top + 2:
                depth -= 1
                i += 1
                continue
            if c != 44:
                return -1
            i = skip_ws(buf, i + 1, end)
            if top == 123:
                i = skip_key(buf, i, end)
                if i < 0:
                    return -1
            break


@jit
def _guarded(buf: Any, start: int, end: int, guard: Any) -> bool:
    """Whether the text "&" + ``buf[start:end]`` (an entity as the first unescaping pass leaves
    ``&amp;NAME;``, for the remove patterns to see) holds a character ``guard`` marks."""
    if guard[38]:
        return True
    for at in range(start, end):
        if guard[buf[at]]:
            return True
    return False


@jit
def entry_at(buf: Any, at: int, end: int, joined: Any, ends: Any, length: int) -> int:
    """The index of the first of the joined entries (``ends``: their end offsets) that ``buf[at:end]``
    starts with, counting only entries ``length`` bytes long unless ``length`` is -1; -1 if none."""
    previous = 0
    for k in range(ends.shape[0]):
        n = ends[k] - previous
        if (length < 0 or n == length) and at + n <= end:
            same = True
            for m in range(n):
                if buf[at + m] != joined[previous + m]:
                    same = False
                    break
            if same:
                return k
        previous = ends[k]
    return -1


@jit
def entity(buf: Any, i: int, end: int, names: Any, name_ends: Any, codes: Any) -> tuple[int, int]:
    """``i`` at ``&``: ``(code point, index after the entity)``; code -1: a literal ``&`` that
    ``html.unescape`` leaves alone (followed by a space or the string's end); -2: not for the kernel."""
    j = i + 1
    if j >= end or buf[j] == 34:
        return -1, j
    c = buf[j]
    if c == 32:
        return -1, j
    code = 0
    if c == 35:  # &#...; or &#x...;
        j += 1
        hexa = j < end and (buf[j] == 120 or buf[j] == 88)
        if hexa:
            j += 1
        digits = j
        while j < end:
            d = buf[j]
            if 48 <= d <= 57:
                v = d - 48
            elif hexa and 97 <= d <= 102:
                v = d - 87
            elif hexa and 65 <= d <= 70:
                v = d - 55
            else:
                break
            code = code * (16 if hexa else 10) + v
            j += 1
            if j - digits > 7:
                return -2, j
        if j == digits or j >= end or buf[j] != 59:
            return -2, j
        if code < CODE_LIMIT and FOLD[code] >= 0:
            return code, j + 1
        return -2, j
    # a name: the longest run html.unescape's pattern takes, then ";"
    start = j
    while j < end:
        d = buf[j]
        if d == 59 or d == 9 or d == 10 or d == 12 or d == 32 or d == 60 or d == 38 or d == 35 or d == 92 or d == 34:
            break
        j += 1
        if j - start > 8:
            return -2, j
    if j >= end or buf[j] != 59:
        return -2, j
    k = entry_at(buf, start, j, names, name_ends, j - start)
    if k >= 0:
        return codes[k], j + 1
    return -2, j


@jit
def normalize(
    buf: Any, i: int, end: int, out: Any, o: int, emit: bool, lower: bool, plain: Any, guard: Any,
    literals: Any, literal_ends: Any, names: Any, name_ends: Any, codes: Any,
) -> tuple[int, int, int, int]:
    """``i`` at a top-level string's opening quote: ``(index after it, characters, bytes written at
    out[o:], changed)`` for its normalised text, written out only when ``emit`` (lower-cased when
    ``lower``); index -1: not for the kernel, e.g. where a remove pattern could match: one of
    ``literals`` starts there, or an escape or entity decodes to a character ``guard`` marks.

    ``plain``: the bytes copied as they are (:data:`PLAIN_BYTES` less the literals' first bytes).
    """
    i += 1
    chars = 0
    start = o
    pending = False
    changed = 0
    ampersand = -1  # >= 0 once an "&" is written, until a space follows it
    while i < end:
        if not pending and ampersand < 0 and not emit:
            # the common run, only counted: plain characters and single inner spaces
            run = i
            while i < end:
                c = buf[i]
                if not plain[c] and not (c == 32 and (o > start or i > run) and i + 1 < end and plain[buf[i + 1]]):
                    break
                i += 1
            o += i - run
            chars += i - run
            if i >= end:
                break
        elif not pending and ampersand < 0:
            # the common run: plain characters and single inner spaces, copied as they are
            while i < end:
                c = buf[i]
                if plain[c]:
                    if lower and 65 <= c <= 90:
                        c += 32
                    out[o] = c
                elif c == 32 and o > start and i + 1 < end and plain[buf[i + 1]]:
                    out[o] = 32
                else:
                    break
                o += 1
                chars += 1
                i += 1
            if i >= end:
                break
        c = buf[i]
        code = c
        if c == 34:
            break
        if c < 32 or c > 126:
            return -1, 0, 0, 0
        if literal_ends.shape[0] > 0 and entry_at(buf, i, end, literals, literal_ends, -1) >= 0:
            return -1, 0, 0, 0
        if c == 92:
            if i + 1 < end and buf[i + 1] == 34 and not guard[34]:
                code = 34
                i += 2
            else:
                return -1, 0, 0, 0
        elif c == 38:
            code, j = entity(buf, i, end, names, name_ends, codes)
            if code == -2:
                return -1, 0, 0, 0
            if code == -1:
                code = 38
                i += 1
            else:
                changed = 1
                if code == 38:  # "&amp;": normalize_text's second pass reads what follows the "&"
                    inner, k = entity(buf, j - 1, end, names, name_ends, codes)
                    if inner == -2:
                        return -1, 0, 0, 0
                    if inner >= 0:
                        if inner == 38 or _guarded(buf, j, k, guard):
                            return -1, 0, 0, 0  # a third pass, or a remove pattern that could match "&NAME;" first
                        code, j = inner, k
                if guard[code]:
                    return -1, 0, 0, 0
                i = j
        else:
            i += 1
        if FOLD[code] == 32:
            if o == start or pending:
                changed = 1  # leading, or a run: dropped
            if o > start:
                pending = True
            continue
        if pending:
            out[o] = 32
            o += 1
            chars += 1
            pending = False
            ampersand = -1
        if ampersand >= 0:
            return -1, 0, 0, 0  # "&" then no space: html.unescape's second pass could read it
        if code == 38:
            ampersand = o
        elif lower:
            code = FOLD[code]
        if code < 0x80:
            out[o] = code
            o += 1
        elif code < 0x800:
            out[o] = 0xC0 | (code >> 6)
            out[o + 1] = 0x80 | (code & 0x3F)
            o += 2
        else:
            out[o] = 0xE0 | (code >> 12)
            out[o + 1] = 0x80 | ((code >> 6) & 0x3F)
            out[o + 2] = 0x80 | (code & 0x3F)
            o += 3
        chars += 1
    if i >= end:
        return -1, 0, 0, 0
    if pending:
        changed = 1
    return i + 1, chars, o - start, changed


@jit
def scan(
    buf: Any,
    newlines: Any,
    fields: Any,
    field_ends: Any,
    required: Any,
    title: int,
    content: int,
    min_length: int,
    junk_max: int,
    keys_wanted: bool,
    names: Any,
    name_ends: Any,
    codes: Any,
    plain: Any,
    guard: Any,
    literals: Any,
    literal_ends: Any,
    prefixes: Any,
    prefix_ends: Any,
    starts: Any,
    fates: Any,
    changed: Any,
    no_key: Any,
    blob: Any,
) -> tuple[int, int]:
    """Every line of ``buf`` (``newlines``: the offsets of its newline bytes, in order): its start,
    fate and whether a string changed; the kept lines' title keys written to ``blob``, each followed
    by a newline. Returns (lines, bytes of blob used)."""
    n_fields = field_ends.shape[0]
    kinds = np.zeros(n_fields, dtype=np.int64)
    lengths = np.zeros(n_fields, dtype=np.int64)
    key_starts = np.zeros(_MAX_KEYS, dtype=np.int64)
    key_ends = np.zeros(_MAX_KEYS, dtype=np.int64)
    stack = np.zeros(_MAX_DEPTH, dtype=np.int64)
    title_text = np.empty(buf.shape[0] + 8, dtype=np.uint8)
    other_text = np.empty(buf.shape[0] + 8, dtype=np.uint8)
    content_text = np.empty(buf.shape[0] + 8, dtype=np.uint8)
    prefixed = prefix_ends.shape[0] > 0
    size = buf.shape[0]
    line = 0
    b = 0
    pos = 0
    while pos < size:
        end = newlines[line] if line < newlines.shape[0] else size
        starts[line] = pos
        fates[line] = PYTHON
        changed[line] = 0
        no_key[line] = 0
        kinds[:] = MISSING
        title_bytes = 0
        content_bytes = 0
        any_change = 0
        n_keys = 0
        ok = False
        i = skip_ws(buf, pos, end)
        if i < end and buf[i] == 123:
            i = skip_ws(buf, i + 1, end)
            if i < end and buf[i] == 125:
                ok = True
                i += 1
            while i < end and not ok:
                if buf[i] != 34:
                    break
                k0 = i + 1
                i = skip_string(buf, i, end)
                if i < 0 or n_keys == _MAX_KEYS:
                    break
                k1 = i - 1
                duplicate = False
                for k in range(n_keys):
                    if key_ends[k] - key_starts[k] == k1 - k0:
                        same = True
                        for m in range(k1 - k0):
                            if buf[key_starts[k] + m] != buf[k0 + m]:
                                same = False
                                break
                        if same:
                            duplicate = True
                            break
                if duplicate:
                    break
                key_starts[n_keys] = k0
                key_ends[n_keys] = k1
                n_keys += 1
                field = entry_at(buf, k0, k1, fields, field_ends, k1 - k0)
                i = skip_ws(buf, i, end)
                if i >= end or buf[i] != 58:
                    break
                i = skip_ws(buf, i + 1, end)
                if i >= end:
                    break
                if buf[i] == 34:
                    is_title = field == title and keys_wanted
                    is_content = field == content and prefixed
                    out = title_text if is_title else content_text if is_content else other_text
                    i, chars, written, change = normalize(
                        buf, i, end, out, 0, is_title or is_content, is_title, plain, guard, literals, literal_ends,
                        names, name_ends, codes,
                    )
                    if i < 0:
                        break
                    any_change |= change
                    if field >= 0:
                        kinds[field] = STRING
                        lengths[field] = chars
                        if is_title:
                            title_bytes = written
                        if is_content:
                            content_bytes = written
                else:
                    value = i
                    i = skip_value(buf, i, end, stack)
                    if i < 0:
                        break
                    if field >= 0:
                        kinds[field] = NULL if buf[value] == 110 else OTHER
                i = skip_ws(buf, i, end)
                if i >= end:
                    break
                if buf[i] == 125:
                    ok = True
                    i += 1
                    break
                if buf[i] != 44:
                    break
                i = skip_ws(buf, i + 1, end)
        if ok and skip_ws(buf, i, end) == end:
            fate = KEPT
            for f in range(n_fields):
                if required[f] and (kinds[f] <= NULL or (kinds[f] == STRING and lengths[f] == 0)):
                    fate = MISSING_REQUIRED
                    break
            if fate == KEPT and kinds[content] == STRING:
                if lengths[content] < min_length:
                    fate = TOO_SHORT
                elif 0 < lengths[content] <= junk_max:
                    fate = PYTHON  # the junk check needs the text
                elif prefixed and entry_at(content_text, 0, content_bytes, prefixes, prefix_ends, -1) >= 0:
                    fate = PYTHON  # a junk pattern could match it
            if fate != PYTHON:
                fates[line] = fate
                changed[line] = any_change
                if fate == KEPT and keys_wanted:
                    if kinds[title] == STRING and lengths[title] > 0:
                        for m in range(title_bytes):
                            blob[b + m] = title_text[m]
                        b += title_bytes
                    else:
                        no_key[line] = 1
                    blob[b] = 10
                    b += 1
        line += 1
        pos = end + 1
    return line, b
