"""Data text made inert in the plain report files: Markdown (report.md) and CSV (answers.csv).

An answer is whatever a model said, so it is untrusted. In Markdown it must not become a live
image (``![x](http://tracker/pixel.png)``), link (``[x](javascript:…)``), autolink or raw
HTML; in a CSV opened by a spreadsheet it must not become a formula (``=HYPERLINK(…)``: the
OWASP "CSV injection" rule). The text stays readable and, for CSV, is read back unchanged.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: Characters that open Markdown links, images and table cells (escaped with a backslash).
_MD_PUNCTUATION = re.compile(r"([\\\[\]|])")
#: What GitHub-flavoured Markdown turns into links by itself: scheme:// and www.
_AUTOLINK = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*:)//|\b(www)\.")
#: Cell starts a spreadsheet reads as a formula (OWASP); quotes before them are escaped too,
#: so that :func:`csv_unguard` gives back exactly the original text.
_FORMULA_START = re.compile(r"'*[=+\-@\t\r]")


def md_text(text: object) -> str:
    """Data text made safe for Markdown, on one line: HTML-escaped (no raw HTML), link and image
    brackets and table pipes backslash-escaped, autolinks broken (``http:\\/\\/``, ``www\\.``)."""
    escaped = _MD_PUNCTUATION.sub(r"\\\1", html.escape(str(text), quote=False))
    escaped = _AUTOLINK.sub(lambda m: f"{m.group(1)}\\/\\/" if m.group(1) else f"{m.group(2)}\\.", escaped)
    return escaped.replace("\r", "").replace("\n", "<br>")


def csv_guard(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``; anything
    else unchanged."""
    if isinstance(value, str) and _FORMULA_START.match(value):
        return "'" + value
    return value


def csv_unguard(value: object) -> object:
    """The inverse of :func:`csv_guard` (for reading a written CSV back)."""
    if isinstance(value, str) and value.startswith("'") and _FORMULA_START.match(value[1:]):
        return value[1:]
    return value


def guarded_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells pass through :func:`csv_guard`."""
    out = frame.copy()
    for column in _text_columns(out):
        out[column] = out[column].map(csv_guard)
    return out


def unguarded_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (read from a CSV written from :func:`guarded_frame`) with its text restored."""
    for column in _text_columns(frame):
        frame[column] = frame[column].map(csv_unguard)
    return frame


def _text_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that may hold text (object or string dtype; numbers are never formulas)."""
    import pandas as pd

    return [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])]
