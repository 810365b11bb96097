"""Saved reports: files, escaping, self-containment, plots with and without matplotlib."""

from __future__ import annotations

import math
import re
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest

import finetunekit
from eval_support import amazon_eval_sets, FixedAnswerModel, KnowingModel, make_examples, product_rows
from finetunekit.errors import DataError
from finetunekit.evaluation.evalsets import EvalSet

SCRIPT = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def parse_tags(page: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every start tag of an HTML page with its attributes, as a browser's tokenizer sees them."""
    tags = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, [(k, v or "") for k, v in attrs]))

    Collector().feed(page)
    return tags


@pytest.fixture
def report(pm):
    train, test = product_rows()
    sets = amazon_eval_sets(make_examples(train, plugins=pm), test, train_dataset=train, plugins=pm)
    models = {"knowing": KnowingModel(train + test),
              "hostile": FixedAnswerModel(f"{SCRIPT} see https://evil.example/x.js & <img src=x onerror=alert(2)>")}
    return finetunekit.Evaluator(plugins=pm, progress=False).evaluate(models, sets)


@pytest.fixture
def loss_csv(tmp_path):
    path = tmp_path / "metrics.csv"
    pd.DataFrame({"step": [1, 2, 3, 4], "loss": [2.5, 1.75, 1.25, 1.0],
                  "eval_loss": [None, 1.9, None, 1.4]}).to_csv(path, index=False)
    return path


def test_save_writes_every_file(report, loss_csv, tmp_path):
    out = report.save(tmp_path / "report", training_metrics=loss_csv)
    names = {p.name for p in out.iterdir()}
    assert names == {"summary.csv", "answers.csv", "meta.json", "report.md", "report.html",
                     "metrics.png", "training_loss.png"}  # nothing else: no temp files left behind
    assert (out / "metrics.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "training_loss.png").read_bytes().startswith(PNG_MAGIC)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Training loss: 2.5000 at step 1 → 1.0000 at step 4 (4 logged steps)." in md
    assert "![training loss](training_loss.png)" in md and "| train-questions | format | 1.000 | 0.000 |" in md
    assert pd.read_csv(out / "summary.csv").shape == report.summary.shape


def test_saved_report_loads_back(report, tmp_path):
    report.save(tmp_path)
    loaded = finetunekit.EvaluationReport.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.summary, report.summary, check_dtype=False)
    assert loaded.to_markdown() == report.to_markdown()
    assert (loaded.models, loaded.splits, loaded.metrics) == (report.models, report.splits, report.metrics)
    assert list(loaded.answers.answer) == list(report.answers.answer)


def test_html_escapes_answers_and_references_nothing_external(report, tmp_path):
    report.save(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower() and "<img src=x" not in page.lower()
    tags = parse_tags(page)
    assert not {name for name, _ in tags} & {"script", "link", "iframe", "object", "embed", "base"}
    links = [value for _, attrs in tags for key, value in attrs if key in ("src", "href", "action")]
    assert links and all(v.startswith("data:image/png;base64,") for v in links)  # the embedded plot
    assert not any(key.startswith("on") for _, attrs in tags for key, _ in attrs)
    assert not re.search(r"@import|url\(", page, flags=re.I)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and "<script" not in md


def test_without_matplotlib_the_report_says_plots_were_skipped(report, loss_csv, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # import now fails
    report.save(tmp_path, training_metrics=loss_csv)
    assert not list(tmp_path.glob("*.png"))
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "Plots were skipped: matplotlib is not installed" in text
        assert "png" not in text.replace("Plots were skipped", "")


def test_bad_training_metrics_name_the_file_and_column(report, tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("step,eval_loss\n1,2.0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m\.csv.*field 'loss'"):
        report.save(tmp_path / "out", training_metrics=bad)
    assert not (tmp_path / "out" / "report.html").exists()


def test_examples_show_the_worst_items_first_and_are_deterministic(pm, tmp_path):
    train, test = product_rows()
    rows = train + test
    sets = amazon_eval_sets(make_examples(train, plugins=pm), test, train_dataset=train, plugins=pm)

    class ForgetsBravo(KnowingModel):
        def generate(self, conversations):
            answers = super().generate(conversations)
            return ["I don't know." if "Bravo" in c[-1]["content"] else a for c, a in zip(conversations, answers)]

    report = finetunekit.Evaluator(plugins=pm, progress=False).evaluate({"m": ForgetsBravo(rows)}, sets)
    first = report.example_items("train-questions", n=3)
    assert len(first) == 3 and first == report.example_items("train-questions", n=3)
    bravo = report.answers[(report.answers.row_id == "b") & (report.answers.split == "train-questions")]
    assert first[0] == int(bravo["item"].iloc[0])  # rouge_l 0: the worst
    assert report.primary_metric() == "rouge_l"
    report.save(tmp_path, n_examples=3)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert f"#### Item {first[0]} (among the lowest rouge_l)" in md
    assert "(every item shown)" in md  # unseen-products has only 2 items


def test_pivot_and_markdown_summary(report):
    pivot = report.pivot()
    assert list(pivot.columns) == ["knowing", "hostile"]
    assert pivot.loc[("unseen-products", "refusal"), "knowing"] == 0.0
    lines = report.to_markdown().splitlines()
    assert lines[0] == "| split | metric | knowing | hostile |"
    assert len(lines) == 2 + len(report.summary) // 2
    assert str(report) == report.to_markdown()


def test_an_empty_split_is_shown_as_not_measured_not_as_zero(pm, tmp_path):
    train, test = product_rows()
    sets = amazon_eval_sets(make_examples(train, plugins=pm), test, train_dataset=train, plugins=pm)
    sets.append(EvalSet("no-questions"))
    report = finetunekit.Evaluator(plugins=pm, progress=False).evaluate({"knowing": KnowingModel(train + test)}, sets)
    empty = report.summary[report.summary.split == "no-questions"]
    assert len(empty) > 0 and (empty.n == 0).all() and empty.value.isna().all()
    assert "| no-questions | format | – |" in report.to_markdown()
    assert "| no-questions | answer_length:mean_words | – |" in report.to_markdown()
    assert "0.000" not in "".join(line for line in report.to_markdown().splitlines() if "no-questions" in line)
    report.save(tmp_path)  # plots and both pages with NaN figures
    assert (tmp_path / "metrics.png").read_bytes().startswith(PNG_MAGIC)
    assert "| no-questions | format | – |" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert '<td>no-questions</td><td>format</td><td class="num">–</td>' in (tmp_path / "report.html").read_text(encoding="utf-8")
    loaded = finetunekit.EvaluationReport.load(tmp_path)
    assert math.isnan(loaded.value("knowing", "no-questions", "format"))
    assert loaded.to_markdown() == report.to_markdown()
