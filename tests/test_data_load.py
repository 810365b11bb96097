"""Loading: formats, column mapping, limits, streaming, and the typed error for each bad input."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import finetunekit
from finetunekit.data import Dataset, DatasetLoader
from finetunekit.data.streams import MissingFileError
from finetunekit.errors import DataError, MissingDependencyError
from finetunekit.registry import DuplicateComponentError

REAL_ROWS = Path("/work/shared/data/amazon_titles_real_1k.json.gz")


def write_lines(path: Path, lines: list[bytes | str]) -> Path:
    data = b"".join((line.encode("utf-8") if isinstance(line, str) else line) + b"\n" for line in lines)
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def rows_file(path: Path, n: int) -> Path:
    return write_lines(path, [json.dumps({"title": f"T{i}", "content": f"C{i}", "n": i}) for i in range(n)])


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.json", "rows.jsonl.gz", "rows.json.gz"])
def test_jsonl_plain_and_gzip_give_rows_with_line_numbers(tmp_path, pm, name):
    ds = Dataset.load(rows_file(tmp_path / name, 3), plugins=pm)
    assert ds.records() == [{"title": f"T{i}", "content": f"C{i}", "n": i, "_row_id": i + 1} for i in range(3)]
    assert ds.load_report.lines_read == 3 and ds.load_report.rows == 3 and ds.load_report.complete


def test_columns_rename_and_select(tmp_path, pm):
    ds = Dataset.load(rows_file(tmp_path / "r.jsonl", 2), columns={"title": "name", "content": "text"}, plugins=pm)
    assert ds.records()[1] == {"name": "T1", "text": "C1", "_row_id": 2}
    listed = Dataset.load(tmp_path / "r.jsonl", columns=["n"], plugins=pm)
    assert [row["n"] for row in listed] == [0, 1]


def test_format_argument_overrides_the_suffix(tmp_path, pm):
    path = rows_file(tmp_path / "rows.txt", 2)
    assert len(Dataset.load(path, format="jsonl", plugins=pm)) == 2


def test_load_is_lazy_and_limit_stops_reading(tmp_path, pm):
    path = write_lines(tmp_path / "r.jsonl", ['{"title": "a"}', '{"title": "b"}', "{broken"])
    ds = Dataset.load(path, limit=2, plugins=pm)  # nothing read yet, so no error yet
    assert [r["title"] for r in ds] == ["a", "b"]
    assert ds.load_report.lines_read == 2 and not ds.load_report.complete
    with pytest.raises(DataError):
        Dataset.load(path, plugins=pm).records()


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 30), limit=st.integers(0, 40))
def test_limit_is_honoured(tmp_path, pm, n, limit):
    path = rows_file(tmp_path / f"limit_{n}.jsonl", n)
    rows = Dataset.load(path, limit=limit, plugins=pm).records()
    assert [r["n"] for r in rows] == list(range(min(n, limit)))


def test_blank_lines_are_counted_not_rows(tmp_path, pm):
    path = write_lines(tmp_path / "r.jsonl", ['{"title": "a"}', "", "   ", '{"title": "b"}'])
    ds = Dataset.load(path, plugins=pm)
    assert [r["_row_id"] for r in ds] == [1, 4]
    assert ds.load_report.blank_lines == 2


def test_broken_json_line_names_file_line_and_column(tmp_path, pm):
    path = write_lines(tmp_path / "bad.jsonl", ['{"title": "a"}', '{"title": "b",, }'])
    with pytest.raises(DataError) as info:
        Dataset.load(path, plugins=pm).records()
    error = info.value
    assert (error.path, error.line, error.column) == (str(path), 2, 15)
    assert str(path) in str(error) and "line 2" in str(error) and "column 15" in str(error)
    assert "expected one JSON object per line" in str(error)


def test_non_object_line_names_what_was_expected(tmp_path, pm):
    path = write_lines(tmp_path / "bad.jsonl", ['{"title": "a"}', '{"title": "b"}', "[1, 2]"])
    with pytest.raises(DataError, match=r"line 3: expected a JSON object per line, got an array") as info:
        Dataset.load(path, plugins=pm).records()
    assert info.value.line == 3 and str(path) in str(info.value)


def test_undecodable_byte_names_line_and_column(tmp_path, pm):
    path = write_lines(tmp_path / "bad.jsonl.gz", ['{"title": "a"}', b'{"title": "\xff"}'])
    with pytest.raises(DataError) as info:
        Dataset.load(path, plugins=pm).records()
    assert (info.value.line, info.value.column) == (2, 12)
    assert "undecodable byte 0xff (expected UTF-8 text)" in str(info.value) and str(path) in str(info.value)


def test_missing_mapped_column_names_file_line_and_field(tmp_path, pm):
    path = write_lines(tmp_path / "r.jsonl", ['{"title": "a", "content": "x"}', '{"title": "b"}'])
    with pytest.raises(DataError) as info:
        Dataset.load(path, columns={"title": "title", "content": "content"}, plugins=pm).records()
    assert (info.value.line, info.value.field) == (2, "content")
    assert str(path) in str(info.value) and "line 2" in str(info.value) and "missing column 'content'" in str(info.value)


def test_missing_file_is_a_file_not_found_error(tmp_path, pm):
    path = tmp_path / "nope.jsonl.gz"
    with pytest.raises(FileNotFoundError) as info:
        Dataset.load(path, plugins=pm).records()
    assert isinstance(info.value, DataError) and isinstance(info.value, MissingFileError)
    assert str(path) in str(info.value) and "file not found" in str(info.value)


@pytest.mark.parametrize("kwargs", [{"format": "xml"}, {}])
def test_unknown_format_lists_the_known_ones(tmp_path, pm, kwargs):
    path = tmp_path / "rows.xml"
    path.write_text("<rows/>")
    with pytest.raises(DataError, match="unknown format") as info:
        Dataset.load(path, plugins=pm, **kwargs)
    assert str(path) in str(info.value)
    for known in ("jsonl", ".json.gz", "csv", "parquet"):
        assert known in str(info.value)


def test_truncated_gzip_is_a_data_error(tmp_path, pm):
    good = rows_file(tmp_path / "r.jsonl.gz", 2000).read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated or not valid gzip") as info:
        Dataset.load(path, plugins=pm).records()
    assert str(path) in str(info.value)


def test_skip_counts_every_bad_record_by_reason(tmp_path, pm):
    lines = [
        '{"title": "ok", "content": "x"}',
        "{broken",
        '"a string"',
        b'{"title": "\xfe"}',
        '{"content": "no title"}',
        '{"title": "fine", "content": "y"}',
    ]
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    ds = Dataset.load(path, columns=["title", "content"], on_error="skip", plugins=pm)
    assert [r["_row_id"] for r in ds] == [1, 6]
    report = ds.load_report
    assert report.skipped == {"invalid_json": 1, "not_an_object": 1, "undecodable": 1, "missing_field": 1}
    assert report.lines_read == 6 and report.rows == 2 and len(report.messages) == 4


def test_bad_on_error_value_is_rejected_up_front(tmp_path, pm):
    with pytest.raises(DataError, match="on_error"):
        Dataset.load(rows_file(tmp_path / "r.jsonl", 1), on_error="ignore", plugins=pm)


def test_csv_rows_and_errors(tmp_path, pm):
    path = tmp_path / "rows.csv"
    path.write_bytes(b'title,content\nA,"x, quoted"\nB\nC,\xff\n\nD,"two\nlines"\n')
    with pytest.raises(DataError, match="expected 2 fields as in the header, got 1") as info:
        Dataset.load(path, plugins=pm).records()
    assert info.value.line == 3 and str(path) in str(info.value)
    ds = Dataset.load(path, on_error="skip", plugins=pm)
    assert ds.records() == [
        {"title": "A", "content": "x, quoted", "_row_id": 2},
        {"title": "D", "content": "two\nlines", "_row_id": 6},
    ]
    assert ds.load_report.skipped == {"wrong_field_count": 1, "undecodable": 1}
    assert "field 'content'" in ds.load_report.messages[1] and "line 4" in ds.load_report.messages[1]


def test_parquet_round_trip_and_column_projection(tmp_path, pm):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"title": ["a", "b"], "content": ["x", None], "extra": [[1, 2], [3]]})
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path)
    assert Dataset.load(path, plugins=pm).records()[1] == {"title": "b", "content": None, "extra": [3], "_row_id": 2}
    assert Dataset.load(path, columns={"title": "name"}, plugins=pm).records() == [
        {"name": "a", "_row_id": 1},
        {"name": "b", "_row_id": 2},
    ]


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, pm, monkeypatch):
    path = tmp_path / "rows.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'finetunekit\[parquet\]'"):
        Dataset.load(path, plugins=pm).records()


def test_dataframe_source_uses_index_and_maps_columns():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"name": ["a", "b"], "text": ["x", float("nan")]}, index=[10, 20])
    ds = Dataset.load(frame, columns={"name": "title", "text": "content"})
    assert ds.records() == [{"title": "a", "content": "x", "_row_id": 10}, {"title": "b", "content": None, "_row_id": 20}]
    with pytest.raises(DataError, match="missing column 'body'") as info:
        Dataset.from_pandas(frame, columns={"body": "content"})
    assert info.value.field == "body" and "<DataFrame>" in str(info.value)


def test_a_plugin_loader_is_found_by_suffix(tmp_path, pm):
    class TsvLoader(DatasetLoader):
        name = "tsv"
        suffixes = (".tsv",)

        def iter_records(self, path, **options):
            lines = Path(path).read_text().splitlines()
            header = lines[0].split("\t")
            for number, line in enumerate(lines[1:], 2):
                yield number, dict(zip(header, line.split("\t")))

    class Plugin:
        @finetunekit.hookimpl
        def register_dataset_loaders(self, register):
            register(TsvLoader())

    pm.register(Plugin(), name="tsv-plugin")
    path = tmp_path / "rows.tsv"
    path.write_text("title\tcontent\nA\tx\n")
    assert Dataset.load(path, plugins=pm).records() == [{"title": "A", "content": "x", "_row_id": 2}]

    class Clash:
        @finetunekit.hookimpl
        def register_dataset_loaders(self, register):
            register(TsvLoader())

    pm.register(Clash(), name="clash")
    with pytest.raises(DuplicateComponentError, match="tsv-plugin"):
        Dataset.load(path, plugins=pm)


@pytest.mark.skipif(not REAL_ROWS.exists(), reason="the real AmazonTitles rows are not on this machine")
def test_real_rows_load_with_their_nulls(pm):
    ds = Dataset.load(REAL_ROWS, plugins=pm)
    rows = ds.records()
    assert len(rows) == 1008 and ds.load_report.skipped == {}
    assert sum(r["uid"] is None for r in rows) == 1008 - 26
    assert sum(r["target_ind"] is None for r in rows) == 1008 - 15
    assert all(isinstance(r["uid"], str) and len(r["uid"]) == 10 for r in rows if r["uid"] is not None)
    cleaned = ds.clean().records()
    assert not any("&#" in r["content"] or "&amp;" in r["content"] for r in cleaned)
    assert all(r["content"] and r["title"] for r in cleaned)
    assert ds.clean().clean_report.removed["missing_required"] >= 11
