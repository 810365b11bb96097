"""Transforms: clean, head, sample, split, fingerprint, pandas round trips (with hypothesis)."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetunekit.data import Dataset
from finetunekit.data.cleaning import normalize_text
from finetunekit.errors import ConfigError

# Text with the corpus's quirks: entities (also double-escaped), odd whitespace, edition notes.
_PIECES = st.sampled_from(
    ["a", "Zoë", " ", "  ", "\t", "\n", "\xa0", "&", "amp;", "#39;", "&#x2019;", "&amp;lt;", "&nbsp;", "&",
     ";", "--This text refers to thePaperbackedition.", "Book by", "VHS Tape", "ß", "İ"]
)
quirky_text = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=8).map("".join)
rows_strategy = st.lists(
    st.fixed_dictionaries({"title": st.one_of(st.none(), quirky_text), "content": st.one_of(st.none(), quirky_text)}),
    max_size=25,
)


def ids(dataset):
    return [row["_row_id"] for row in dataset]


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, min_length=st.integers(0, 6), dedupe=st.booleans())
def test_clean_is_idempotent(rows, min_length, dedupe):
    once = Dataset.from_records(rows).clean(min_content_length=min_length, drop_duplicate_titles=dedupe)
    twice = once.clean(min_content_length=min_length, drop_duplicate_titles=dedupe)
    assert twice.records() == once.records()
    report = once.clean_report
    assert report.rows_in == len(rows) and report.rows_out == len(once)
    assert report.rows_in == report.rows_out + report.removed_total


@given(text=quirky_text)
def test_normalize_text_is_idempotent_and_leaves_no_entity_or_run_of_spaces(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once and "\xa0" not in once


def test_clean_unescapes_collapses_and_counts_each_rule():
    rows = [
        {"title": "  Kings &amp; Queens ", "content": "It&#39;s  a\n &#x2019;history&#x2019;.--This text refers to thePaperbackedition."},
        {"title": "Empty", "content": "   "},
        {"title": None, "content": "no title"},
        {"title": "Junk", "content": "Book by"},
        {"title": "Short", "content": "tiny"},
        {"title": "kings & queens", "content": "a later duplicate of the first title"},
        {"title": "Kept", "content": "Text: English, French (translation) and a real description"},
    ]
    cleaned = Dataset.from_records(rows).clean(min_content_length=5, rules=["amazon-titles"])
    assert cleaned.records() == [
        {"title": "Kings & Queens", "content": "It's a \u2019history\u2019.", "_row_id": 0},
        {"title": "Kept", "content": "Text: English, French (translation) and a real description", "_row_id": 6},
    ]
    report = cleaned.clean_report
    assert report.removed == {"missing_required": 2, "junk_content": 1, "too_short": 1, "duplicate_title": 1}
    assert (report.rows_in, report.rows_out) == (7, 2)


def test_without_rules_cleaning_knows_no_corpus():
    rows = [{"title": "A", "content": "Book by"}, {"title": "B", "content": "Fine.--This text refers to thePaperbackedition."}]
    cleaned = Dataset.from_records(rows).clean()
    assert [r["content"] for r in cleaned] == ["Book by", "Fine.--This text refers to thePaperbackedition."]
    assert cleaned.clean_report.removed == {}


def test_patterns_keep_their_flags_among_others():
    ds = Dataset.from_records([{"title": "T1", "content": "abc"}, {"title": "T2", "content": "a b c"}, {"title": "T3", "content": "ABC"}])
    verbose = re.compile("a b c  # the letters, spaces ignored", re.VERBOSE)
    kept = ds.clean(junk_contents=[verbose, re.compile("zzz", re.IGNORECASE)])
    assert [row["content"] for row in kept.records()] == ["a b c", "ABC"]
    inline = ds.clean(junk_contents=[re.compile("(?i)abc"), re.compile("zzz")])  # global flags inline
    assert [row["content"] for row in inline.records()] == ["a b c"]


def test_clean_options_junk_list_required_and_duplicates():
    rows = [{"title": "A", "content": "Book by"}, {"title": "A", "content": "Spam spam"}, {"title": "B", "content": ""}]
    ds = Dataset.from_records(rows)
    assert ids(ds.clean(junk_contents=None, drop_duplicate_titles=False)) == [0, 1]
    assert ids(ds.clean(junk_contents=["spam SPAM", re.compile("B..k by")], drop_duplicate_titles=False)) == []
    assert ids(ds.clean(required=("title",), junk_contents=[])) == [0, 2]
    with pytest.raises(ConfigError, match="min_content_length"):
        ds.clean(min_content_length=-1)


def test_transforms_return_new_datasets_and_leave_the_source_unchanged():
    rows = [{"title": " a ", "content": "x"}]
    ds = Dataset.from_records(rows)
    ds.clean().records()
    for row in ds:
        row["title"] = "mutated"
    assert ds.records() == [{"title": " a ", "content": "x", "_row_id": 0}] and rows == [{"title": " a ", "content": "x"}]


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 60), k=st.integers(0, 70), seed=st.integers(0, 2**32))
def test_sample_is_deterministic_of_the_requested_size_and_a_subset(n, k, seed):
    ds = Dataset.from_records([{"title": str(i)} for i in range(n)])
    first, again = ds.sample(k, seed=seed), ds.sample(k, seed=seed)
    assert ids(first) == ids(again)
    assert len(first) == min(k, n) == len(set(ids(first)))
    assert ids(first) == sorted(ids(first)) and set(ids(first)) <= set(range(n))


def test_sample_differs_with_the_seed_and_is_uniform_enough():
    ds = Dataset.from_records([{"i": i} for i in range(100)])
    assert ids(ds.sample(10, seed=1)) != ids(ds.sample(10, seed=2))
    counts = [0] * 100
    for seed in range(400):
        for row_id in ids(ds.sample(10, seed=seed)):
            counts[row_id] += 1
    assert min(counts) > 10 and max(counts) < 90  # expectation 40 each


def test_sample_from_a_file_equals_sample_from_memory(tmp_path):
    rows = [{"title": f"t{i}", "content": "c" * (i % 7)} for i in range(300)]
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    from_file = Dataset.load(path).clean().sample(20, seed=7)
    in_memory = Dataset.from_records([{**r, "_row_id": i + 1} for i, r in enumerate(rows)]).clean().sample(20, seed=7)
    assert from_file.records() == in_memory.records()
    assert from_file.fingerprint() == in_memory.fingerprint()
    assert from_file.clean_report.rows_in == 300 and from_file.load_report.lines_read == 300


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 80),
    test_size=st.one_of(st.floats(0.01, 0.99), st.integers(0, 80)),
    seed=st.integers(0, 1000),
)
def test_split_is_disjoint_complete_and_deterministic(n, test_size, seed):
    ds = Dataset.from_records([{"title": str(i)} for i in range(n)])
    if isinstance(test_size, int) and test_size > n:
        with pytest.raises(ConfigError, match="test_size"):
            ds.split(test_size, seed=seed)
        return
    train, test = ds.split(test_size, seed=seed)
    assert set(ids(train)).isdisjoint(ids(test))
    assert sorted(ids(train) + ids(test)) == list(range(n))
    expected = round(test_size * n) if isinstance(test_size, float) else test_size
    assert len(test) == expected and len(train) == n - expected
    train2, test2 = ds.split(test_size, seed=seed)
    assert (ids(train2), ids(test2)) == (ids(train), ids(test))


@pytest.mark.parametrize("bad", [0.0, 1.0, -1, 1.5, "0.2", True])
def test_split_rejects_bad_test_sizes(bad):
    with pytest.raises(ConfigError, match="test_size"):
        Dataset.from_records([{"a": 1}, {"a": 2}]).split(bad)


def test_head_and_len_and_repr():
    ds = Dataset.from_records([{"i": i} for i in range(5)])
    assert ids(ds.head(2)) == [0, 1] and len(ds.head(9)) == 5
    assert "head(2)" in repr(ds.head(2))


def test_fingerprint_is_stable_and_sensitive():
    rows = [{"title": "a", "content": "x"}, {"title": "b", "content": "y"}]
    fp = Dataset.from_records(rows).fingerprint()
    assert fp == Dataset.from_records([dict(r) for r in rows]).fingerprint() and len(fp) == 64
    assert fp != Dataset.from_records([rows[0], {"title": "b", "content": "z"}]).fingerprint()
    assert fp != Dataset.from_records(rows[::-1]).fingerprint()


def test_pandas_round_trip_keeps_row_ids():
    pytest.importorskip("pandas")
    ds = Dataset.from_records([{"title": "a", "content": None, "_row_id": 7}, {"title": "b", "content": "y", "_row_id": 3}])
    frame = ds.to_pandas()
    assert list(frame["_row_id"]) == [7, 3]
    assert Dataset.from_pandas(frame).records() == ds.records()


def test_from_records_rejects_non_mappings():
    from finetunekit.errors import DataError

    with pytest.raises(DataError, match="record 1 is a list"):
        Dataset.from_records([{"a": 1}, [1, 2]])
