"""Eval sets: train-questions are what was trained on, paraphrased is disjoint, unseen is held out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eval_support import amazon_eval_sets, FORMATTER, make_examples, product_rows
from finetunekit.errors import ConfigError, DataError
from finetunekit.evaluation.evalsets import SPLITS
from finetunekit.builtin.amazon import AMAZON_PRODUCT, AMAZON_PRODUCT_PARAPHRASED

REAL_DATA = Path("/work/shared/data/amazon_titles_real_1k.json.gz")


def test_three_splits_from_examples_and_held_out_rows(pm):
    train, test = product_rows()
    examples = make_examples(train, system="You are a shop assistant.", plugins=pm)
    sets = amazon_eval_sets(examples, test, train_dataset=train, formatter=FORMATTER, plugins=pm)
    assert [s.name for s in sets] == list(SPLITS)
    trained, paraphrased, unseen = sets

    # train-questions: exactly the trained conversations, minus the answer
    assert [list(i.messages) for i in trained] == [e["messages"][:-1] for e in examples.examples]
    assert [(i.row_id, i.template) for i in trained] == [(m["row_id"], m["template"]) for m in examples.metadata]
    assert [i.target for i in trained] == [e["messages"][-1]["content"] for e in examples.examples]
    assert [i.content for i in trained] == [r["content"] for r in train]
    assert trained.items[0].prefix == "This is what I know about Gadget Alpha from Amazon:"

    # paraphrased: the same products, one question each, templates never trained on
    assert [i.row_id for i in paraphrased] == [r["_row_id"] for r in train]
    assert {i.template for i in paraphrased} <= set(AMAZON_PRODUCT_PARAPHRASED.templates)
    assert not {i.template for i in paraphrased} & set(AMAZON_PRODUCT.templates)
    for item, row in zip(paraphrased, train):
        assert row["title"] in item.question and item.target == FORMATTER.format(row)
        assert item.messages[0] == {"role": "system", "content": "You are a shop assistant."}
        assert item.question not in {i.question for i in trained}

    # unseen-products: the held-out rows, asked with the templates training used
    assert [i.row_id for i in unseen] == ["e", "f"]
    assert {i.template for i in unseen} <= {i.template for i in trained}
    assert all(i.split == name for s, name in zip(sets, SPLITS) for i in s)


def test_eval_sets_are_deterministic_and_limited_per_split(pm):
    rows = [{"_row_id": k, "title": f"Item {k}", "content": f"about {k}"} for k in range(40)]
    train, test = rows[:30], rows[30:]
    examples = make_examples(train, plugins=pm)
    build = lambda seed: amazon_eval_sets(examples, test, train_dataset=train, seed=seed, limit=5, plugins=pm)  # noqa: E731
    first, again, other = build(3), build(3), build(4)
    assert first == again
    assert [len(s) for s in first] == [5, 5, 5]
    assert [i.row_id for i in first[1]] == [i.row_id for i in first[0]]  # paraphrased asks the same products
    assert [i.row_id for i in first[0]] != [i.row_id for i in other[0]]


def test_only_the_splits_whose_inputs_are_given(pm):
    train, test = product_rows()
    only_unseen = amazon_eval_sets(None, test, prompts="amazon-product", plugins=pm)
    assert [s.name for s in only_unseen] == ["unseen-products"]
    assert {i.template for i in only_unseen[0]} <= set(AMAZON_PRODUCT.templates)
    only_train = amazon_eval_sets(make_examples(train, plugins=pm), train_dataset=train, plugins=pm)
    assert [s.name for s in only_train] == ["train-questions", "paraphrased"]
    with pytest.raises(ConfigError, match="needs the training examples"):
        amazon_eval_sets(None, None, plugins=pm)


def test_paraphrase_templates_must_be_disjoint_from_training(pm):
    train, _ = product_rows()
    examples = make_examples(train, plugins=pm)
    with pytest.raises(ConfigError, match="shares templates with training"):
        amazon_eval_sets(examples, train_dataset=train, paraphrase_prompts="amazon-product", plugins=pm)
    overlapping = [AMAZON_PRODUCT_PARAPHRASED.templates[0], "Q: {title}?"]
    with pytest.raises(ConfigError, match="Q: {title}"):
        amazon_eval_sets(examples, train_dataset=train, prompts=["Q: {title}?"],
                        paraphrase_prompts=overlapping, plugins=pm)


def test_held_out_rows_must_not_have_been_trained_on(pm):
    train, test = product_rows()
    with pytest.raises(ConfigError, match="were trained on"):
        amazon_eval_sets(make_examples(train, plugins=pm), [*test, train[1]], train_dataset=train, plugins=pm)


def test_bad_inputs_name_what_is_wrong(pm):
    train, _ = product_rows()
    examples = make_examples(train, plugins=pm)
    with pytest.raises(DataError, match=r"example 2 was built from row 'c'"):
        amazon_eval_sets(examples, train_dataset=[r for r in train if r["_row_id"] != "c"], plugins=pm)
    with pytest.raises(ConfigError, match="pass the formatter used"):
        amazon_eval_sets(examples, train_dataset=train, formatter="Facts on {title}: {content}", plugins=pm)
    with pytest.raises(ConfigError, match="metadata"):
        amazon_eval_sets(examples.examples, train_dataset=train, plugins=pm)
    with pytest.raises(ConfigError, match="train_dataset"):
        amazon_eval_sets(examples, plugins=pm)
    with pytest.raises(ConfigError, match="limit"):
        amazon_eval_sets(examples, train_dataset=train, limit=0, plugins=pm)


ROWS = st.lists(
    st.fixed_dictionaries({"title": st.text(min_size=1, max_size=30), "content": st.text(max_size=80)}),
    min_size=1, max_size=12,
).map(lambda rows: [{"_row_id": f"r{k}", **row} for k, row in enumerate(rows)])


@given(rows=ROWS, seed=st.integers(0, 10))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_references_always_come_from_the_source_rows(pm, rows, seed):
    examples = make_examples(rows, seed=seed, plugins=pm)
    trained, paraphrased = amazon_eval_sets(examples, train_dataset=rows, seed=seed, plugins=pm)
    assert len(trained) == len(rows) and len(paraphrased) == len(rows)
    for split in (trained, paraphrased):
        for item, row in zip(split, rows):
            assert item.row_id == row["_row_id"]
            assert item.target == FORMATTER.format(row)
            assert item.content == row["content"].strip()
            assert item.target.startswith(item.prefix)
            assert row["title"] in item.question


@pytest.mark.skipif(not REAL_DATA.exists(), reason="real corpus sample not present")
def test_real_rows_with_their_quirks(pm):
    with gzip.open(REAL_DATA, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(80), handle)]
    rows = [{"_row_id": k, "title": r["title"], "content": r["content"] or ""} for k, r in enumerate(rows)]
    train, test = rows[:60], rows[60:]
    sets = amazon_eval_sets(make_examples(train, plugins=pm), test, train_dataset=train, limit=25, plugins=pm)
    assert [len(s) for s in sets] == [25, 25, 20]
    by_id = {r["_row_id"]: r for r in rows}
    for item in (i for s in sets for i in s):
        assert item.content == by_id[item.row_id]["content"].strip()
        assert by_id[item.row_id]["title"] in item.question
