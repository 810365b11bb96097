"""Text helpers shared by the metrics: normalisation, tokenisation, prefixes and LCS.

Normalisation (:func:`normalize`) is Unicode NFKC, case folding, typographic apostrophes and
quotes made plain, and runs of whitespace collapsed to one space, stripped. It is idempotent.
Tokens (:func:`tokenize`) are the runs of word characters (``\\w+``, Unicode aware) of the
normalised text, so punctuation is ignored: ``"Don't stop!"`` -> ``["don", "t", "stop"]``.
HTML entities are not decoded here: ``Dataset.clean()`` does that for the data.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Hashable, Sequence

_WHITESPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+")
_PLAIN_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


def normalize(text: str) -> str:
    """``text`` NFKC-normalised, case-folded, with plain quotes and single spaces (idempotent)."""
    text = unicodedata.normalize("NFKC", text)
    text = unicodedata.normalize("NFKC", text.casefold()).translate(_PLAIN_QUOTES)
    return _WHITESPACE.sub(" ", text).strip()


def tokenize(text: str) -> list[str]:
    """The word tokens of the normalised ``text`` (punctuation dropped)."""
    return _TOKEN.findall(normalize(text))


class Tokenizer:
    """:func:`tokenize` as an object with a ``tokenize`` method (what ``rouge-score`` accepts)."""

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``."""
        return tokenize(text)


def starts_with(answer: str, prefix: str) -> bool:
    """Whether ``answer`` opens with ``prefix``, comparing normalised texts."""
    return normalize(answer).startswith(normalize(prefix))


def strip_prefix(answer: str, prefix: str) -> str:
    """``answer`` without its opening ``prefix`` (normalised), or ``answer`` unchanged if it lacks it.

    The returned body is normalised text, which is what the token metrics compare anyway.
    """
    norm_prefix = normalize(prefix)
    if not norm_prefix:
        return answer
    norm_answer = normalize(answer)
    if not norm_answer.startswith(norm_prefix):
        return answer
    return norm_answer[len(norm_prefix):].strip()


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """The length of the longest common subsequence of ``a`` and ``b``.

    Bit-parallel (Hyyrö 2004): one big-integer update per item of ``b``, so long texts stay
    fast in pure Python. Equal to the classic dynamic programme (tested against it).
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[Hashable, int] = {}
    for i, item in enumerate(a):
        masks[item] = masks.get(item, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for item in b:
        u = v & masks.get(item, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def f_measure(overlap: int, n_answer: int, n_reference: int) -> float:
    """The harmonic mean of precision ``overlap/n_answer`` and recall ``overlap/n_reference``.

    Two empty texts agree perfectly (1.0); one empty text against a non-empty one scores 0.0.
    """
    if n_answer == 0 and n_reference == 0:
        return 1.0
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_answer, overlap / n_reference
    return 2 * precision * recall / (precision + recall)


def bag_overlap(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """How many tokens ``a`` and ``b`` share, counted with multiplicity."""
    return sum((Counter(a) & Counter(b)).values())
