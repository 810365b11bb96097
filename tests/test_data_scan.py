"""The parallel scan (``finetunekit.data.scan``) gives the sequential pass's sample, reports and errors."""

from __future__ import annotations

import gzip
import html
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetunekit.builtin.amazon import AMAZON_TITLES_CLEANING
from finetunekit.data import Dataset, scan
from finetunekit.data.cleaning import CleanOptions, normalize_text
from finetunekit.data.sampling import reservoir_sample
from finetunekit.data.scan import ScanPlan, SequentialPassNeeded, scan_sample
from finetunekit.data.sources import normalize_columns
from finetunekit.errors import DataError
from synthetic_catalog import generate_rows

REAL_ROWS = Path("/work/shared/data/amazon_titles_real_1k.json.gz")
needs_real_rows = pytest.mark.skipif(not REAL_ROWS.exists(), reason="the real rows are not on this machine")

CLEANINGS = {
    "no clean": None,
    "defaults": {},
    "amazon rules": {"rules": [AMAZON_TITLES_CLEANING], "min_content_length": 20},
    "keep duplicates": {"drop_duplicate_titles": False, "required": ["title"]},
}


@pytest.fixture(autouse=True)
def sequential_by_default(monkeypatch):
    """``Dataset.sample`` takes the sequential pass here unless a test lowers the threshold."""
    monkeypatch.setattr(scan, "MIN_FILE_BYTES", float("inf"))


def sequential(path, n, seed, *, columns=None, on_error="raise", clean=None):
    """What ``Dataset.load(...).clean(...).sample(n, seed)`` gives by the sequential pass."""
    ds = Dataset.load(path, columns=columns, on_error=on_error, progress=False)
    if clean is not None:
        ds = ds.clean(**clean)
    sample = ds.sample(n, seed=seed)
    return sample.records(), sample.load_report, sample.clean_report


def scanned(path, n, seed, *, columns=None, on_error="raise", clean=None, workers=0, chunk_bytes=4096):
    """The same through ``scan_sample``, in chunks of ``chunk_bytes``."""
    options = None if clean is None else CleanOptions.build(**clean)
    plan = ScanPlan(Path(path), normalize_columns(columns), on_error, False, options, chunk_bytes)
    return scan_sample(plan, n, seed, workers=workers)


def write_lines(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def assert_same(expected, got):
    rows, load, clean = expected
    got_rows, got_load, got_clean = got
    assert got_rows == rows
    assert [list(row) for row in got_rows] == [list(row) for row in rows]  # same field order too
    assert got_load == load
    assert got_clean == clean
    if clean is not None:
        assert list(got_clean.removed) == list(clean.removed)  # rules in the order of their first removal


@needs_real_rows
@pytest.mark.parametrize("cleaning", list(CLEANINGS))
@pytest.mark.parametrize("n, seed", [(50, 0), (500, 42), (5000, 1)])
def test_real_rows_give_the_sequential_sample_and_reports(cleaning, n, seed):
    clean = CLEANINGS[cleaning]
    expected = sequential(REAL_ROWS, n, seed, clean=clean)
    assert_same(expected, scanned(REAL_ROWS, n, seed, clean=clean, chunk_bytes=3000))


@needs_real_rows
def test_real_rows_with_mapped_columns():
    columns = {"title": "name", "content": "text"}
    clean = {"required": ["name", "text"], "title_field": "name", "content_field": "text"}
    expected = sequential(REAL_ROWS, 100, 7, columns=columns, clean=clean)
    assert expected[2].removed  # the rules did drop rows
    assert_same(expected, scanned(REAL_ROWS, 100, 7, columns=columns, clean=clean, chunk_bytes=10_000))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A generated corpus in the AmazonTitles schema with its quirks (entities, empty contents, repeats)."""
    path = tmp_path_factory.mktemp("scan") / "trn.json.gz"
    return write_lines(path, [json.dumps(row).encode() + b"\n" for row in generate_rows(4000, seed=5)])


@pytest.mark.parametrize("cleaning", list(CLEANINGS))
def test_generated_corpus_through_a_worker_process(corpus, cleaning):
    clean = CLEANINGS[cleaning]
    expected = sequential(corpus, 300, 42, clean=clean)
    assert_same(expected, scanned(corpus, 300, 42, clean=clean, workers=1, chunk_bytes=50_000))


def test_dataset_sample_uses_the_scan_on_big_files(corpus, monkeypatch):
    expected = sequential(corpus, 200, 3, clean={})
    monkeypatch.setattr(scan, "MIN_FILE_BYTES", 0)
    if scan.choose_workers(corpus) is None:
        pytest.skip("one CPU (or no fork): Dataset.sample keeps the sequential pass")
    calls = []
    real_scan_sample = scan.scan_sample
    monkeypatch.setattr(scan, "scan_sample", lambda *a, **k: calls.append(k) or real_scan_sample(*a, **k))
    sample = Dataset.load(corpus, progress=False).clean().sample(200, seed=3)
    assert_same(expected, (sample.records(), sample.load_report, sample.clean_report))
    assert calls and calls[0]["workers"] >= 1


# ---------------------------------------------------------------- errors keep file, line and column


def lines_with_a_bad_one(bad: bytes, at: int, total: int = 400) -> list[bytes]:
    lines = [json.dumps({"title": f"T{i}", "content": f"C{i} &amp; more"}).encode() + b"\n" for i in range(total)]
    lines[at - 1] = bad
    return lines


@pytest.mark.parametrize(
    "bad",
    [b'{"title": "x", "content": }\n', b"[1, 2]\n", b'{"title": "caf\xe9"}\n', b'{"title": NaN}\n'],
    ids=["invalid json", "not an object", "undecodable", "nan"],
)
@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_line_raises_the_sequential_error(tmp_path, bad, workers):
    path = write_lines(tmp_path / "rows.jsonl.gz", lines_with_a_bad_one(bad, at=333))
    with pytest.raises(DataError) as sequential_error:
        sequential(path, 10, 0, clean={})
    with pytest.raises(DataError) as scan_error:
        scanned(path, 10, 0, clean={}, workers=workers, chunk_bytes=2000)
    assert str(scan_error.value) == str(sequential_error.value)
    assert (scan_error.value.path, scan_error.value.line, scan_error.value.column) == (str(path), 333, sequential_error.value.column)


def test_a_missing_mapped_column_raises_with_its_line(tmp_path):
    lines = lines_with_a_bad_one(b'{"content": "no title"}\n', at=250)
    path = write_lines(tmp_path / "rows.jsonl", lines)
    with pytest.raises(DataError, match="missing column 'title'") as error:
        scanned(path, 10, 0, columns=["title", "content"], chunk_bytes=1000)
    assert error.value.line == 250 and error.value.field == "title"


def test_skipped_lines_are_counted_with_their_first_messages(tmp_path):
    lines = lines_with_a_bad_one(b"oops\n", at=5)
    for at in (50, 120, 121, 300, 301, 399):
        lines[at - 1] = b'{"broken": \n' if at % 2 else b"\n"
    path = write_lines(tmp_path / "rows.jsonl", lines)
    expected = sequential(path, 40, 9, on_error="skip", clean={})
    assert expected[1].skipped == {"invalid_json": 4} and expected[1].blank_lines == 3
    assert_same(expected, scanned(path, 40, 9, on_error="skip", clean={}, chunk_bytes=700))


def test_a_truncated_gzip_is_left_to_the_sequential_pass(tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl.gz"
    data = gzip.compress(b"".join(lines_with_a_bad_one(b"{}\n", at=1, total=3000)))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SequentialPassNeeded):
        scanned(path, 10, 0, clean={}, chunk_bytes=2000)
    with pytest.raises(DataError, match="truncated") as sequential_error:
        sequential(path, 10, 0, clean={})
    monkeypatch.setattr(scan, "MIN_FILE_BYTES", 0)
    with pytest.raises(DataError, match="truncated") as through_dataset:
        Dataset.load(path, progress=False).clean().sample(10).records()
    assert str(through_dataset.value) == str(sequential_error.value)


def test_a_missing_file_raises_as_before(tmp_path):
    with pytest.raises(FileNotFoundError, match="file not found"):
        scanned(tmp_path / "nope.jsonl", 10, 0)


# ---------------------------------------------------------------- properties


PIECES = st.sampled_from(list("aAbB ßs&;#39amp\t\u00a0é") + ["&amp;", "  ", "&#39;", "SS", "Book by"])
TEXT = st.lists(PIECES, max_size=6).map("".join)
VALUE = st.one_of(TEXT, st.none(), st.integers(-3, 3), st.lists(st.integers(0, 3), max_size=2))


@st.composite
def json_lines(draw) -> list[bytes]:
    """Lines of a JSON Lines file: mostly objects with quirky text, some broken or blank lines."""
    lines = []
    for index in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["row"] * 8 + ["blank", "broken", "array", "undecodable", "bom"]))
        if kind == "row":
            keys = draw(st.lists(st.sampled_from(["title", "content", "uid", "_row_id"]), unique=True, max_size=4))
            record = {key: draw(VALUE) for key in keys}
            line = json.dumps(record, ensure_ascii=draw(st.booleans())).encode()
        elif kind == "bom":
            line = b"\xef\xbb\xbf" + json.dumps({"title": draw(TEXT), "content": "x"}).encode()
        else:
            line = {"blank": b"  ", "broken": b'{"title": ', "array": b"[1]", "undecodable": b'{"a": "\xff"}'}[kind]
        lines.append(line + (b"\r\n" if draw(st.booleans()) and kind != "blank" else b"\n"))
    if lines and draw(st.booleans()):
        lines[-1] = lines[-1].rstrip(b"\n")  # no newline at the end of the file
    return lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=json_lines(),
    cleaning=st.sampled_from(list(CLEANINGS)),
    n=st.integers(0, 12),
    seed=st.integers(0, 3),
    chunk_bytes=st.integers(1, 300),
    gz=st.booleans(),
)
def test_any_file_gives_the_sequential_sample_and_reports(tmp_path, lines, cleaning, n, seed, chunk_bytes, gz):
    path = write_lines(tmp_path / ("rows.jsonl.gz" if gz else "rows.jsonl"), lines)
    clean = CLEANINGS[cleaning]
    expected = sequential(path, n, seed, on_error="skip", clean=clean)
    assert_same(expected, scanned(path, n, seed, on_error="skip", clean=clean, chunk_bytes=chunk_bytes))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=json_lines(), chunk_bytes=st.integers(1, 300))
def test_any_file_raises_the_sequential_error_or_none(tmp_path, lines, chunk_bytes):
    path = write_lines(tmp_path / "rows.jsonl", lines)
    try:
        expected = sequential(path, 5, 0, clean={})
    except DataError as error:
        with pytest.raises(DataError) as scan_error:
            scanned(path, 5, 0, clean={}, chunk_bytes=chunk_bytes)
        assert str(scan_error.value) == str(error)
    else:
        assert_same(expected, scanned(path, 5, 0, clean={}, chunk_bytes=chunk_bytes))


def algorithm_r(items, n, seed):
    """Vitter's algorithm R as ``reservoir_sample`` was first written (the reference)."""
    rng = random.Random(seed)
    reservoir = []
    for index, item in enumerate(items):
        if index < n:
            reservoir.append((index, item))
        else:
            slot = rng.randrange(index + 1)
            if slot < n:
                reservoir[slot] = (index, item)
    return [item for _, item in sorted(reservoir)]


@given(total=st.integers(0, 10_000), n=st.integers(0, 600), seed=st.integers(0, 2**32))
def test_reservoir_sample_is_algorithm_r(total, n, seed):
    assert reservoir_sample(iter(range(total)), n, seed) == algorithm_r(range(total), n, seed)


def plain_normalize(text, remove=None):
    """``normalize_text`` by its definition: unescape, cut, collapse whitespace, until stable."""
    for _ in range(10):
        once = html.unescape(text)
        once = remove.sub(" ", once) if remove is not None else once
        once = " ".join(once.split())
        if once == text:
            break
        text = once
    return text


@settings(max_examples=300)
@given(text=st.one_of(st.text(), TEXT), cut=st.booleans())
def test_normalize_text_keeps_its_definition(text, cut):
    remove = AMAZON_TITLES_CLEANING.remove_patterns[0] if cut else None
    assert normalize_text(text, remove) == plain_normalize(text, remove)


@pytest.mark.parametrize("workers", [0, 1])
def test_rules_are_reported_in_the_order_of_their_first_removal(tmp_path, workers):
    """A repeated title before the chunk's first short content: ``duplicate_title`` comes first (review)."""
    rows = [("a", "long enough"), ("A", "long enough"), ("b", "x"), ("c", "")] * 50
    path = write_lines(tmp_path / "rows.jsonl", [json.dumps({"title": t, "content": c}).encode() + b"\n" for t, c in rows])
    clean = {"min_content_length": 5}
    expected = sequential(path, 10, 0, clean=clean)
    assert list(expected[2].removed) == ["duplicate_title", "too_short", "missing_required"]
    assert_same(expected, scanned(path, 10, 0, clean=clean, workers=workers, chunk_bytes=5000))
