"""The compiled line kernel gives each chunk exactly the Python path's result (counts, keys, order)."""

from __future__ import annotations

import dataclasses
import gzip
import html
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from synthetic_catalog import generate_rows

from finetunekit.builtin.amazon import AMAZON_TITLES_CLEANING
from finetunekit.data import kernel_scan, line_kernel
from finetunekit.data.cleaning import CleaningRules, CleanOptions
from finetunekit.data.scan import ScanPlan, scan_chunk

REAL_ROWS = Path("/work/shared/data/amazon_titles_real_1k.json.gz")

OPTIONS = {
    "defaults": CleanOptions(),
    "short and junk": CleanOptions.build(min_content_length=6, junk_contents=["Book by", "x  y", "N/A"]),
    "keep duplicates": CleanOptions.build(drop_duplicate_titles=False, required=["title"]),
    "other fields": CleanOptions.build(required=["uid", "content"], title_field="uid", min_content_length=1),
    "nothing required": CleanOptions.build(required=[]),
    "amazon rules": CleanOptions.build(rules=[AMAZON_TITLES_CLEANING], min_content_length=20),
    "other patterns": CleanOptions.build(
        junk_contents=[re.compile(r"x[x ]*"), re.compile(r'y"[a-z ]*', re.DOTALL)],
        rules=[CleaningRules("marks", remove_patterns=(re.compile("\xa9[^ ]*"), re.compile('"[!]')))],
    ),
    "entity-like patterns": CleanOptions.build(
        rules=[CleaningRules("tags", remove_patterns=(re.compile(r"#\w+"), re.compile("nbsp;?"), re.compile("&l")))],
    ),
    "verbose patterns": CleanOptions.build(
        junk_contents=[re.compile("x x  # any run of x", re.VERBOSE)],
        rules=[CleaningRules("v", remove_patterns=(re.compile("a b  # the letters", re.VERBOSE),))],
    ),
}


#: The least share of lines the kernel judges itself, where patterns send more to the Python path: a
#: fifth of the real rows carry the edition note the Amazon rules cut out, and a quarter an escaped
#: quote, which "other patterns" guards.
MIN_SHARE = {"amazon rules": 0.6, "other patterns": 0.5, "entity-like patterns": 0.5, "verbose patterns": 0.4}


def plan(options: CleanOptions, **changes) -> ScanPlan:
    return ScanPlan(Path("rows.jsonl"), clean=options, **changes)


def assert_same_result(options: CleanOptions, data: bytes, first_line: int = 1, on_error: str = "skip") -> None:
    """The chunk's result with the kernel equals the Python path's, field by field."""
    kernel = scan_chunk(plan(options, on_error=on_error), data, first_line)
    python = scan_chunk(plan(options, on_error=on_error, compiled=False), data, first_line)
    assert kernel.failed == python.failed
    assert kernel.load == python.load
    assert kernel.clean == python.clean
    assert list(kernel.clean.removed) == list(python.clean.removed)  # same order: first removal first
    assert kernel.keys == python.keys
    assert kernel.starts == python.starts
    assert kernel.line_numbers == python.line_numbers
    assert kernel.lines == python.lines


def kernel_share(options: CleanOptions, data: bytes) -> float:
    """The share of lines the kernel judged itself (the rest went to the Python path)."""
    fates = kernel_scan.kernel_fates(kernel_scan.kernel_plan(plan(options)), data)
    return float((fates != line_kernel.PYTHON).mean())


# ------------------------------------------------------------------ real and generated rows


@pytest.mark.skipif(not REAL_ROWS.exists(), reason="the real rows are not on this machine")
@pytest.mark.parametrize("name", list(OPTIONS))
def test_real_rows(name):
    data = gzip.decompress(REAL_ROWS.read_bytes())
    assert_same_result(OPTIONS[name], data, first_line=7)
    assert kernel_share(OPTIONS[name], data) > MIN_SHARE.get(name, 0.9)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_generated_corpus(name):
    data = b"".join(json.dumps(row).encode() + b"\n" for row in generate_rows(3000, seed=11))
    assert_same_result(OPTIONS[name], data)
    assert kernel_share(OPTIONS[name], data) > MIN_SHARE.get(name, 0.9)


# ------------------------------------------------------------------ any line


WORDS = ["a", "Bo", "CAFÉ", "x", "y"]
ENTITIES = (
    [f"&{name};" for name in line_kernel.NAMED_ENTITIES[:12]]
    + ["&copy;", "&Eacute;", "&szlig;", "&foo;", "&amp", "&nbsp", "&;", "&#39;", "&#039;", "&#x27;", "&#X2019;"]
    + ["&#151;", "&#x92;", "&#38;", "&#0;", "&#xD800;", "&#1114112;", "&#39", "&#x;", "&#9;", "&#32;", "&#8232;"]
    + ["&amp;rsquo;", "&amp;amp;", "&amp;#39;", "&amp;nbsp;", "&amp;foo", "&& ", "& ", "&", "&amp; "]
)
RAW_PIECES = [" ", "  ", "   ", '\\"', "\\\\", "\\n", "\\u00e9", "\\ud800", "é", "\x7f", "\t", "Book by", "N/A"]
PATTERN_PIECES = ["-", "--", "&#45;", "&amp;#45;", "&ndash;", "Text: ", "Text:  Eng", "Written by", "BOOK BY", "y", "xx", "!"]
PATTERN_PIECES += ["-- This text refers to the Paperback edition.", "&copy;", "\xa9", "&#xA9;x"]
TEXT = st.lists(st.sampled_from(WORDS + ENTITIES + RAW_PIECES + PATTERN_PIECES), max_size=7).map("".join)
NUMBERS = ["0", "-0", "7", "-12", "1.5", "1e5", "1.5E-7", "2e+01", "01", "1.", "-", "1e400", "1e999", "1" * 30, "1" * 45, "--1"]
SPACE = st.sampled_from(["", " ", "  ", "\t", "\r"])


@st.composite
def value(draw, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["string"] * 4 + ["number", "literal", "array", "object"] if depth < 2 else ["string", "number", "literal"]))
    if kind == "string":
        return '"' + draw(TEXT) + '"'
    if kind == "number":
        return draw(st.sampled_from(NUMBERS))
    if kind == "literal":
        return draw(st.sampled_from(["true", "false", "null", "nul", "NaN", "Infinity"]))
    items = draw(st.lists(value(depth + 1), max_size=3))
    if kind == "array":
        return "[" + ", ".join(items) + draw(st.sampled_from(["]", ", ]", ""])) + ""
    return "{" + ", ".join(f'"k{i}": {item}' for i, item in enumerate(items)) + draw(st.sampled_from(["}", ",}"]))


@st.composite
def line(draw) -> bytes:
    kind = draw(st.sampled_from(["object"] * 12 + ["blank", "spaces", "array", "string", "garbage", "bom"]))
    if kind != "object":
        return {"blank": b"", "spaces": b" \t ", "array": b"[1, 2]", "string": b'"title"', "garbage": b'{"title": "a"} x',
                "bom": b'\xef\xbb\xbf{"title": "a", "content": "b"}'}[kind]  # fmt: skip
    keys = draw(st.lists(st.sampled_from(["title", "content", "uid", "other", "_row_id", "tit\\\"le"]), max_size=5))
    members = []
    for key in keys:
        members.append(f'{draw(SPACE)}"{key}"{draw(SPACE)}:{draw(SPACE)}{draw(value())}{draw(SPACE)}')
    closing = draw(st.sampled_from(["}"] * 8 + [",}", "", "}}"]))
    return ("{" + ",".join(members) + closing + draw(SPACE)).encode("utf-8")


CHUNKS = st.lists(line(), max_size=25).map(lambda lines: b"\n".join(lines))


@settings(max_examples=400, deadline=None)
@given(data=CHUNKS, name=st.sampled_from(list(OPTIONS)), newline=st.booleans(), first_line=st.integers(1, 5))
def test_any_chunk(data, name, newline, first_line):
    assert_same_result(OPTIONS[name], data + (b"\n" if newline else b""), first_line)


@settings(max_examples=100, deadline=None)
@given(data=CHUNKS)
def test_any_chunk_raising(data):
    """With ``on_error="raise"`` a chunk fails exactly when the Python path's does."""
    assert_same_result(OPTIONS["defaults"], data, on_error="raise")


@settings(max_examples=300, deadline=None)
@given(title=TEXT, content=TEXT)
def test_any_texts(title, content):
    """Titles and contents made of entities, spaces and escapes: normalised and keyed alike."""
    data = f'{{"title": "{title}", "content": "{content}", "uid": "{content}"}}\n'.encode()
    for options in OPTIONS.values():
        assert_same_result(options, data)


# ------------------------------------------------------------------ tables and fallbacks


def test_named_entities_decode_as_html_unescape_does():
    names, ends, codes = line_kernel.entity_table()
    start = 0
    for end, code in zip(ends.tolist(), codes.tolist()):
        name = bytes(names[start:end]).decode()
        assert html.unescape(f"&{name};") == chr(code)
        start = end
    assert len(codes) >= 60


def test_fold_table_follows_python():
    fold = line_kernel.FOLD
    assert fold[0xA0] == 32 and fold[ord("\t")] == 32 and fold[0x2028] == 32  # whitespace
    assert fold[ord("É")] == ord("é") and fold[ord("A")] == ord("a") and fold[0x2019] == 0x2019
    assert fold[0x92] == -1  # html.unescape maps &#146; to a windows-1252 character
    assert fold[ord("ß")] == -1  # its case fold is two characters
    assert fold[ord("&")] == -1
    for code in range(line_kernel.CODE_LIMIT):
        if fold[code] >= 0 and fold[code] != 32:
            assert chr(code).casefold() == chr(fold[code]) and html.unescape(f"&#{code};") == chr(code)


def test_plans_the_kernel_cannot_follow_stay_on_the_python_path(monkeypatch):
    assert kernel_scan.kernel_plan(plan(CleanOptions())) is not None
    assert kernel_scan.kernel_plan(plan(CleanOptions.build(rules=[AMAZON_TITLES_CLEANING]))) is not None
    unbounded = CleanOptions.build(junk_contents=[re.compile(r"[a-z]+ by")])  # no literal start, no bound
    assert kernel_scan.kernel_plan(plan(unbounded)) is None
    for remove in (re.compile("--", re.IGNORECASE), re.compile(r"\s+--"), re.compile("a b")):
        rules = CleaningRules("r", remove_patterns=(remove,))
        assert kernel_scan.kernel_plan(plan(CleanOptions.build(rules=[rules]))) is None
    assert kernel_scan.kernel_plan(plan(CleanOptions(), columns={"title": "name"})) is None
    assert kernel_scan.kernel_plan(plan(None)) is None
    assert kernel_scan.kernel_plan(plan(CleanOptions.build(required=["tï"]))) is None
    same_field = CleanOptions.build(rules=[AMAZON_TITLES_CLEANING], title_field="content")  # keyed and junk-checked
    assert kernel_scan.kernel_plan(plan(same_field)) is None
    monkeypatch.setattr(kernel_scan, "_kernel_works", lambda: False)  # numba missing or failing
    assert kernel_scan.kernel_plan(plan(CleanOptions())) is None
    data = b'{"title": "a", "content": "b"}\n{"title": "A", "content": "c"}\n'
    assert scan_chunk(plan(CleanOptions()), data, 1).keys == ["a", "a"]


def test_a_big_chunk_in_parts_equals_the_whole(tmp_path):
    """Line numbers and starts carry over when the same lines are split differently."""
    data = b"".join(json.dumps(row).encode() + b"\n" for row in generate_rows(500, seed=2))
    whole = scan_chunk(plan(CleanOptions()), data, 1)
    cut = data.index(b"\n", len(data) // 2) + 1
    first, second = scan_chunk(plan(CleanOptions()), data[:cut], 1), scan_chunk(plan(CleanOptions()), data[cut:], 1 + data[:cut].count(b"\n"))
    assert first.keys + second.keys == whole.keys
    assert list(first.line_numbers) + list(second.line_numbers) == list(whole.line_numbers)
    assert dataclasses.replace(first.load, rows=first.load.rows + second.load.rows) == whole.load


def test_one_cpu_scans_in_process_when_the_kernel_applies(tmp_path, monkeypatch):
    from finetunekit.data import Dataset, scan

    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"".join(json.dumps(row).encode() + b"\n" for row in generate_rows(2000, seed=4)))
    expected = Dataset.load(path, progress=False).clean().sample(100, seed=1)
    expected_rows, expected_clean = expected.records(), expected.clean_report
    monkeypatch.setattr(scan, "MIN_FILE_BYTES", 0)
    monkeypatch.setattr(scan.os, "sched_getaffinity", lambda pid: {0})
    assert scan.choose_workers(path, plan(CleanOptions())) == 0
    assert scan.choose_workers(path, plan(CleanOptions(), columns={"title": "name"})) is None
    assert scan.choose_workers(path) is None
    calls = []
    real_scan_sample = scan.scan_sample
    monkeypatch.setattr(scan, "scan_sample", lambda *a, **k: calls.append(k) or real_scan_sample(*a, **k))
    sample = Dataset.load(path, progress=False).clean().sample(100, seed=1)
    assert sample.records() == expected_rows and sample.clean_report == expected_clean
    assert calls == [{"workers": 0}]


@pytest.mark.parametrize(
    "options, line",
    [
        # "&amp;NAME;" is "&NAME;" when the remove patterns run first (found by review)
        (CleanOptions.build(rules=[CleaningRules("r", remove_patterns=(re.compile(r"#\w+"),))]), "Rock &amp;#39;n&amp;#39; Roll"),
        (CleanOptions.build(rules=[CleaningRules("r", remove_patterns=(re.compile("nbsp;?"),))]), "a&amp;nbsp;b"),
        (CleanOptions.build(rules=[CleaningRules("r", remove_patterns=(re.compile("&l"),))]), "x &amp;lt; y"),
        (CleanOptions.build(rules=[CleaningRules("r", remove_patterns=(re.compile(";b"),))]), "0&amp;#xD;b"),
        # one field as title and content: its junk prefix is checked on the text, not on the key
        (CleanOptions.build(rules=[AMAZON_TITLES_CLEANING], title_field="content"), "Text: English, French, Spanish, Italian, German"),
        # verbose patterns keep their flag in the cleaner's alternation
        (CleanOptions.build(rules=[CleaningRules("v", remove_patterns=(re.compile("a b", re.VERBOSE),))]), "xa by"),
        (CleanOptions.build(junk_contents=[re.compile("a b c", re.VERBOSE)]), "abc"),
        # required given as one string (not through build): its name, not its letters' substrings
        (CleanOptions(required="title"), "x"),
    ],
)
def test_reviewed_cases(options, line):
    data = json.dumps({"title": "t", "content": line}).encode() + b"\n"
    data += json.dumps({"t": "x", "i": "y", "l": "z", "e": "w", "title": line, "content": line}).encode() + b"\n"
    data += json.dumps({"t": "x", "i": "y", "l": "z", "e": "w", "content": line}).encode() + b"\n"
    assert_same_result(options, data)


def test_a_kernel_that_fails_to_compile_turns_itself_off(monkeypatch):
    def broken(*args):
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(line_kernel, "scan", broken)
    kernel_scan._kernel_works.cache_clear()
    try:
        with pytest.warns(UserWarning, match="compiled line kernel is off"):
            assert kernel_scan.kernel_plan(plan(CleanOptions())) is None
        data = b'{"title": "a", "content": "b"}\n'
        assert scan_chunk(plan(CleanOptions()), data, 1).keys == ["a"]
    finally:
        monkeypatch.undo()
        kernel_scan._kernel_works.cache_clear()
    assert kernel_scan.kernel_plan(plan(CleanOptions())) is not None


@pytest.mark.parametrize(
    "options",
    [
        CleanOptions.build(title_field=None),
        CleanOptions.build(content_field=None, required=["title"]),
        CleanOptions.build(required=[None]),
        CleanOptions.build(required=[1]),
    ],
    ids=["no title field", "no content field", "required None", "required 1"],
)
def test_field_names_the_kernel_cannot_read_keep_the_python_path(options):
    """Field names that are not text (found by review): no kernel, and the Python path's result."""
    assert kernel_scan.kernel_plan(plan(options)) is None
    assert_same_result(options, b'{"title": "a", "content": "b"}\n{"title": "A", "content": "c"}\n')


def test_a_minimum_length_beyond_any_text():
    options = CleanOptions.build(min_content_length=2**63)
    data = b'{"title": "a", "content": "b"}\n'
    assert_same_result(options, data)
    assert scan_chunk(plan(options), data, 1).clean.removed == {"too_short": 1}
