"""build_examples and ExampleSet: records, metadata, JSONL round trips, broken files."""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetunekit.errors import ConfigError, DataError, TemplateError
from finetunekit.examples.build import build_examples
from finetunekit.examples.example_set import ExampleSet, as_example_set
from finetunekit.plugins import create_plugin_manager
from finetunekit.examples.prompts import ROW_ID_FIELD, PromptGenerator

REAL_ROWS = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon_titles_real_1k.json.gz"
REAL_ROWS = REAL_ROWS if REAL_ROWS.exists() else Path("/work/shared/data/amazon_titles_real_1k.json.gz")


def rows(n: int = 12) -> list[dict]:
    return [{ROW_ID_FIELD: f"B{i:03d}", "title": f"Product {i}", "content": f"About {i}."} for i in range(n)]


def test_examples_are_exactly_messages_with_metadata_kept_apart(pm, tmp_path):
    examples = build_examples(rows(), PromptGenerator("amazon-product", seed=5, plugins=pm), "amazon-product",
                              system="You know the catalogue.", plugins=pm)
    assert len(examples) == 12
    first = examples[0]
    assert list(first) == ["messages"]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][2]["content"] == "This is what I know about Product 0 from Amazon: About 0."
    assert examples.metadata[0]["row_id"] == "B000"
    assert examples.metadata[0]["template"] in PromptGenerator("amazon-product", plugins=pm).template_set.templates
    assert examples.user_questions()[0] == first["messages"][1]["content"]
    assert examples.assistant_answers()[3] == "This is what I know about Product 3 from Amazon: About 3."
    assert examples.prompt_messages()[0] == first["messages"][:2]
    text = examples.to_jsonl(tmp_path / "train.jsonl").read_text(encoding="utf-8")
    assert "B000" not in text and "template" not in text and text.count("\n") == 12


def test_prompts_by_name_and_formatter_as_template(pm):
    examples = build_examples(rows(3), "amazon-product-paraphrased", "{title} | {content}", plugins=pm)
    assert [m["role"] for m in examples[0]["messages"]] == ["user", "assistant"]
    assert examples.assistant_answers() == ["Product 0 | About 0.", "Product 1 | About 1.", "Product 2 | About 2."]
    assert examples.user_questions() == PromptGenerator("amazon-product-paraphrased", plugins=pm).generate(rows(3))


def test_expand_makes_one_example_per_template(pm):
    examples = build_examples(rows(4), "amazon-product", "amazon-product", expand=True, plugins=pm)
    assert len(examples) == 4 * 5
    assert {(m["row_id"], m["template"]) for m in examples.metadata} == {
        (r[ROW_ID_FIELD], t) for r in rows(4) for t in PromptGenerator("amazon-product", plugins=pm).template_set.templates
    }


def test_missing_field_raises_naming_row_and_field(pm):
    data = rows(3) + [{ROW_ID_FIELD: "B-bad", "title": "No content"}]
    with pytest.raises(TemplateError, match=r"row 'B-bad'.*'content'"):
        build_examples(data, "amazon-product", "amazon-product", plugins=pm)


def test_rows_without_ids_are_named_by_position(pm):
    with pytest.raises(TemplateError, match=r"row 1 .*'content'"):
        build_examples([{"title": "a", "content": "b"}, {"title": "c"}], "amazon-product", "amazon-product", plugins=pm)


def test_skip_leaves_bad_rows_out_and_counts_them(pm):
    data = rows(11) + [{ROW_ID_FIELD: "B-bad", "title": "x", "content": float("nan")}, "not a row"]
    examples = build_examples(data, "amazon-product", "amazon-product", on_error="skip", plugins=pm)
    assert len(examples) == 11
    assert [s.where for s in examples.skipped] == ["row 'B-bad'", "row 12"]
    assert "no value for field 'content'" in examples.skipped[0].reason
    report = examples.validate(encoding="estimate")
    assert [w.code for w in report.warnings if w.code == "skipped_input"] == ["skipped_input"]


@pytest.mark.parametrize("kwargs", [{"on_error": "ignore"}, {"system": ""}, {"system": 3}])
def test_bad_arguments_are_config_errors(pm, kwargs):
    with pytest.raises(ConfigError):
        build_examples(rows(2), "amazon-product", "amazon-product", plugins=pm, **kwargs)


unicode_rows = st.lists(
    st.fixed_dictionaries({"title": st.text(min_size=1), "content": st.text()}), min_size=1, max_size=8
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=unicode_rows, system=st.one_of(st.none(), st.text(min_size=1).filter(str.strip)))
def test_any_unicode_survives_jsonl_round_trip(tmp_path, data, system):
    pm = create_plugin_manager(load_entrypoints=False)
    for i, row in enumerate(data):
        row[ROW_ID_FIELD] = i
    examples = build_examples(data, "amazon-product", "{title}\n{content}", system=system, plugins=pm)
    path = examples.to_jsonl(tmp_path / "round.jsonl")
    back = ExampleSet.from_jsonl(path)
    assert back.examples == examples.examples
    assert back.fingerprint() == examples.fingerprint()
    for row, answer in zip(data, back.assistant_answers()):
        assert answer == f"{row['title']}\n{row['content']}"
    # One record per physical line, whatever line separators the text holds.
    assert path.read_bytes().count(b"\n") == len(examples)
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(examples)


def test_jsonl_is_utf8_with_unescaped_unicode(tmp_path):
    examples = ExampleSet([{"messages": [{"role": "user", "content": "Café ☕ 東京"}]}])
    raw = examples.to_jsonl(tmp_path / "u.jsonl").read_bytes()
    assert "Café ☕ 東京".encode() in raw and b"\\u" not in raw


def test_written_file_has_ordinary_permissions(tmp_path):
    path = ExampleSet([{"messages": []}]).to_jsonl(tmp_path / "perm.jsonl")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_unwritable_example_names_it_and_leaves_no_file(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    bad = ExampleSet([{"messages": []}, {"messages": [{"role": "user", "content": "lone \ud800 surrogate"}]}])
    with pytest.raises(DataError, match="example 1 .*surrogate"):
        bad.to_jsonl(target)
    with pytest.raises(DataError, match="example 0 cannot be written as JSON"):
        ExampleSet([{"messages": [], "x": float("nan")}]).to_jsonl(target)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temp files left


def test_fingerprint_changes_with_content_and_equals_file_hash(tmp_path):
    import hashlib

    a = ExampleSet([{"messages": [{"role": "user", "content": "a"}]}])
    b = ExampleSet([{"messages": [{"role": "user", "content": "b"}]}])
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == hashlib.sha256(a.to_jsonl(tmp_path / "a.jsonl").read_bytes()).hexdigest()


BROKEN = [
    (b'{"messages": [}\n', 1, 15, "invalid JSON"),
    (b'{"messages": []}\n{"messages": \n', 2, 14, "invalid JSON"),
    (b'{"messages": []}\n\n[1, 2]\n', 3, None, "expected a JSON object"),
    (b'{"messages": []}\n{"messages": "caf\xe9"}\n', 2, 18, "not valid UTF-8"),
]


@pytest.mark.parametrize(("content", "line", "column", "message"), BROKEN)
def test_broken_lines_name_file_line_and_column(tmp_path, content, line, column, message):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        ExampleSet.from_jsonl(path)
    err = info.value
    assert (err.path, err.line, err.column) == (str(path), line, column)
    assert f"{path}, line {line}" in str(err)


def test_skip_keeps_good_lines_with_their_line_numbers(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
    path.write_text(f"\ufeff{good}\nnot json\n\n{good}\n42\n", encoding="utf-8")
    examples = ExampleSet.from_jsonl(path, on_error="skip")
    assert len(examples) == 2 and [m["line"] for m in examples.metadata] == [1, 4]
    assert [s.where for s in examples.skipped] == [f"{path}, line 2", f"{path}, line 5"]
    report = examples.validate(encoding="estimate")
    assert any(w.code == "skipped_input" and "2 input(s)" in w.message for w in report.warnings)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found") as info:
        ExampleSet.from_jsonl(tmp_path / "nope.jsonl")
    assert info.value.path == str(tmp_path / "nope.jsonl")


def test_slicing_keeps_metadata_and_sequence_protocol(pm):
    examples = build_examples(rows(6), "amazon-product", "amazon-product", plugins=pm)
    part = examples[2:4]
    assert isinstance(part, ExampleSet) and len(part) == 2
    assert [m["row_id"] for m in part.metadata] == ["B002", "B003"]
    assert list(part) == examples.examples[2:4]
    with pytest.raises(ValueError, match="metadata"):
        ExampleSet([{"messages": []}], [{}, {}])


def test_questions_of_an_example_without_user_message_name_it():
    examples = ExampleSet([{"messages": [{"role": "assistant", "content": "x"}]}])
    with pytest.raises(DataError, match="example 0 has no user message"):
        examples.user_questions()


@pytest.mark.skipif(not REAL_ROWS.exists(), reason="real AmazonTitles rows not present")
def test_real_rows_build_and_validate(pm, tmp_path):
    with gzip.open(REAL_ROWS, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    data = [{ROW_ID_FIELD: r["uid"] or f"line{i}", "title": r["title"], "content": r["content"]}
            for i, r in enumerate(records, start=1) if r["content"]]
    examples = build_examples(data, PromptGenerator("amazon-product", seed=42, plugins=pm), "amazon-product", plugins=pm)
    back = ExampleSet.from_jsonl(examples.to_jsonl(tmp_path / "real.jsonl"))
    assert back.examples == examples.examples
    report = back.validate("gpt-4o-mini", encoding="estimate")
    assert report.ok, report.to_text()
    assert report.n_examples == len(data) > 900 and report.epochs == 3
    assert report.tokens.max > 5 * report.tokens.median  # contents up to ~29k characters


def test_as_example_set_accepts_sets_and_plain_sequences(pm):
    built = build_examples(rows(2), "amazon-product", "amazon-product", plugins=pm)
    assert as_example_set(built) is built
    plain = as_example_set(iter(built.examples))
    assert plain.examples == built.examples and plain.metadata == [{}, {}]
    with pytest.raises(TypeError, match="sequence of example dicts"):
        as_example_set({"messages": []})
