"""The synthetic AmazonTitles generator and the sample file shipped with the package."""

from __future__ import annotations

import collections
import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from finetunekit.data import Dataset
from finetunekit.builtin.amazon import sample_data_path
from synthetic_catalog import CHUNK_ROWS, generate_rows, write_jsonl_gz

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {"uid", "title", "content", "target_ind", "target_rel"}


@pytest.fixture(scope="module")
def rows():
    return list(generate_rows(6000, seed=3))


def test_rows_have_the_exact_amazon_titles_schema(rows):
    for row in rows:
        assert set(row) == SCHEMA
        assert isinstance(row["uid"], str) and len(row["uid"]) == 10
        assert isinstance(row["title"], str) and row["title"]
        assert isinstance(row["content"], str)
        assert row["target_ind"] == sorted(row["target_ind"]) and all(type(i) is int for i in row["target_ind"])
        assert row["target_rel"] == [1.0] * len(row["target_ind"])
    assert len({row["uid"] for row in rows}) == len(rows)


def test_rows_carry_the_corpus_quirks(rows):
    n = len(rows)
    empty = sum(not r["content"] for r in rows) / n
    entities = sum("&#" in r["content"] or "&amp;" in r["content"] or "&quot;" in r["content"] for r in rows) / n
    titles = collections.Counter(r["title"] for r in rows)
    duplicates = sum(count - 1 for count in titles.values()) / n
    junk = {"Book by", "VHS Tape"} & {r["content"] for r in rows}
    lengths = sorted(len(r["content"]) for r in rows if r["content"])
    assert 0.28 < empty < 0.38
    assert 0.1 < entities < 0.3
    assert 0.01 < duplicates < 0.06
    assert junk == {"Book by", "VHS Tape"}
    assert lengths[0] < 20 and lengths[-1] > 3000 and 200 < lengths[len(lengths) // 2] < 800
    assert sum("  " in r["content"] for r in rows) > n * 0.03
    assert any("--This text refers to" in r["content"] for r in rows)


def test_contents_are_product_specific(rows):
    contents = [r["content"] for r in rows if len(r["content"]) > 40]
    assert len(set(contents)) > 0.95 * len(contents)
    novels = [r for r in rows if " is a " in r["content"] and r["content"].startswith(r["title"])]
    assert len(novels) > 100  # the content names the product it describes


def test_generation_is_deterministic_per_seed_and_prefix_stable():
    first = list(generate_rows(CHUNK_ROWS + 50, seed=1))
    assert list(generate_rows(CHUNK_ROWS + 50, seed=1)) == first
    assert list(generate_rows(30, seed=1)) == first[:30]
    assert list(generate_rows(30, seed=2)) != first[:30]


def test_written_file_is_byte_identical_whatever_the_process_count(tmp_path):
    one = write_jsonl_gz(tmp_path / "one.json.gz", 1200, seed=5, progress=False)
    two = write_jsonl_gz(tmp_path / "two.json.gz", 1200, seed=5, processes=2, progress=False)
    assert one.read_bytes() == two.read_bytes()
    lines = gzip.decompress(one.read_bytes()).decode().splitlines()
    assert [json.loads(line) for line in lines] == list(generate_rows(1200, seed=5))


def test_shipped_sample_is_the_generated_one_and_small():
    path = sample_data_path()
    assert path.name == "amazon_titles_sample.json.gz" and path.is_file()
    assert path.stat().st_size < 1_000_000
    ds = Dataset.load(path)
    assert ds.records() == [{**row, "_row_id": i} for i, row in enumerate(generate_rows(3000, seed=0), 1)]
    cleaned = ds.clean(rules=["amazon-titles"])
    assert 1500 < len(cleaned) < 2200 and set(cleaned.clean_report.removed) == {
        "missing_required", "junk_content", "duplicate_title"
    }


def test_make_sample_data_script_writes_the_shipped_rows(tmp_path):
    out = tmp_path / "sample.json.gz"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sample_data.py"), "--out", str(out)],
        check=True, capture_output=True,
    )
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(sample_data_path().read_bytes())


@pytest.mark.slow
def test_wheel_ships_the_sample(tmp_path):
    pytest.importorskip("build")
    pytest.importorskip("hatchling", reason="an offline wheel build needs hatchling installed")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    assert "finetunekit/builtin/sample_data/amazon_titles_sample.json.gz" in zipfile.ZipFile(wheel).namelist()
