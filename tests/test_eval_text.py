"""Text helpers of the metrics: normalisation, tokens, prefixes, LCS."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from finetunekit.evaluation import text


def lcs_dp(a, b):
    """The textbook O(n·m) dynamic programme, as the oracle for the bit-parallel version."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_normalize_and_tokenize_by_hand():
    assert text.normalize("  Don\u2019t   STOP\n now ") == "don't stop now"
    assert text.tokenize("Don\u2019t STOP! 3-D, naïve café") == ["don", "t", "stop", "3", "d", "naïve", "café"]
    assert text.tokenize("ﬁne Ｂook") == ["fine", "book"]  # NFKC: ligature and full-width letters
    assert text.tokenize("") == [] and text.tokenize(" ,;! ") == []


@given(st.text())
def test_normalize_is_idempotent(s):
    once = text.normalize(s)
    assert text.normalize(once) == once


@given(st.lists(st.sampled_from("abcde"), max_size=30), st.lists(st.sampled_from("abcde"), max_size=30))
def test_lcs_matches_dynamic_programme(a, b):
    assert text.lcs_length(a, b) == lcs_dp(a, b) == text.lcs_length(b, a)


def test_lcs_by_hand():
    assert text.lcs_length("ABCBDAB", "BDCABA") == 4
    assert text.lcs_length([], ["x"]) == 0
    assert text.lcs_length(["x"] * 200, ["x"] * 70) == 70


def test_f_measure_by_hand():
    assert text.f_measure(4, 6, 5) == 2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5)
    assert text.f_measure(0, 0, 0) == 1.0
    assert text.f_measure(0, 3, 0) == 0.0 and text.f_measure(0, 0, 3) == 0.0


def test_prefix_matching_ignores_case_and_whitespace_not_punctuation():
    prefix = "This is what I know about Widget from Amazon:"
    assert text.starts_with("this  is what i KNOW about widget\nfrom Amazon: a thing", prefix)
    assert not text.starts_with("This is what I know about Widget from Amazon. a thing", prefix)
    assert text.strip_prefix("THIS is what I know about Widget from Amazon:  A Thing", prefix) == "a thing"
    assert text.strip_prefix("Something else", prefix) == "Something else"
    assert text.strip_prefix("Anything", "") == "Anything"


@given(st.text(), st.text())
def test_an_answer_made_of_prefix_and_body_starts_with_the_prefix(prefix, body):
    assert text.starts_with(prefix + body, prefix)
