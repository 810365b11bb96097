"""PromptTemplateSet validation and the seeded PromptGenerator."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetunekit.errors import TemplateError
from finetunekit.plugins import create_plugin_manager
from finetunekit.examples.prompts import ROW_ID_FIELD, PromptGenerator, PromptTemplateSet
from finetunekit.registry import UnknownComponentError

titles = st.text(min_size=1, max_size=40)  # any unicode, braces included
rows_strategy = st.lists(titles, min_size=1, max_size=25).map(
    lambda ts: [{ROW_ID_FIELD: f"id{i}", "title": t} for i, t in enumerate(ts)]
)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 2**32))
def test_generation_is_deterministic_per_seed_and_contains_the_title(rows, seed):
    pm = create_plugin_manager(load_entrypoints=False)
    first = PromptGenerator("amazon-product", seed=seed, plugins=pm).questions(rows)
    again = PromptGenerator("amazon-product", seed=seed, plugins=pm).questions(rows)
    assert first == again
    for row, question in zip(rows, first):
        assert row["title"] in question.text
        assert question.row_id == row[ROW_ID_FIELD]
        assert question.template in PromptGenerator("amazon-product", plugins=pm).template_set.templates


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 1000), data=st.data())
def test_a_rows_question_does_not_depend_on_the_other_rows(rows, seed, data):
    pm = create_plugin_manager(load_entrypoints=False)
    generator = PromptGenerator("amazon-product", seed=seed, plugins=pm)
    shuffled = data.draw(st.permutations(rows))
    by_id = {q.row_id: q.text for q in generator.questions(rows)}
    assert {q.row_id: q.text for q in generator.questions(shuffled)} == by_id
    assert {q.row_id: q.text for q in generator.questions(shuffled[:1])}.items() <= by_id.items()


def test_seeds_spread_rows_over_all_templates(pm):
    rows = [{ROW_ID_FIELD: i, "title": "T"} for i in range(400)]
    generator = PromptGenerator("amazon-product", seed=7, plugins=pm)
    used = {q.template for q in generator.questions(rows)}
    assert used == set(generator.template_set.templates)
    other = PromptGenerator("amazon-product", seed=8, plugins=pm).questions(rows)
    assert [q.template for q in other] != [q.template for q in generator.questions(rows)]


def test_rows_without_ids_fall_back_to_their_position(pm):
    questions = PromptGenerator(["Q {title}"], plugins=pm).questions([{"title": "a"}, {"title": "b"}])
    assert [q.row_id for q in questions] == [0, 1]


def test_expand_uses_every_template_for_every_row(pm):
    generator = PromptGenerator("amazon-product-paraphrased", plugins=pm)
    rows = [{ROW_ID_FIELD: "a", "title": "X"}, {ROW_ID_FIELD: "b", "title": "Y"}]
    expanded = generator.expand(rows)
    n = len(generator.template_set.templates)
    assert len(expanded) == 2 * n
    assert [q.template for q in expanded[:n]] == list(generator.template_set.templates)
    assert {q.row_id for q in expanded[n:]} == {"b"}


def test_missing_field_names_row_and_field(pm):
    with pytest.raises(TemplateError, match=r"row 'B01'.*'title'"):
        PromptGenerator("amazon-product", plugins=pm).generate([{ROW_ID_FIELD: "B01", "name": "x"}])


def test_builtin_sets_are_disjoint_and_large_enough(pm):
    train = PromptGenerator("amazon-product", plugins=pm).template_set
    para = PromptGenerator("amazon-product-paraphrased", plugins=pm).template_set
    assert len(train.templates) == 5 and len(para.templates) >= 5
    assert not set(train.templates) & set(para.templates)
    assert train.fields == para.fields == ("title",)


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ([], "at least one template"),
        ("What is {title}?", "list of strings"),
        (["{title.__class__}"], "attribute or index access"),
        (["{x[0]}"], "attribute or index access"),
        (["{0}"], "positional"),
        (["{}"], "positional"),
        (["{title!r}"], "conversion or format spec"),
        (["{title:{width}}"], "conversion or format spec"),
        (["A {title}", "A {title}"], "repeat"),
    ],
)
def test_template_sets_reject_bad_templates_with_template_error(templates, message):
    with pytest.raises(TemplateError, match=message) as info:
        PromptTemplateSet(name="bad", templates=templates)
    assert "'bad'" in str(info.value)
    with pytest.raises(TemplateError, match=message):
        PromptTemplateSet.model_validate({"name": "bad", "templates": templates})


def test_template_set_is_frozen_and_rejects_unknown_keys():
    s = PromptTemplateSet(name="ok", templates=["{a}"])
    with pytest.raises(Exception):
        s.name = "other"  # type: ignore[misc]
    with pytest.raises(Exception, match="extra"):
        PromptTemplateSet(name="ok", templates=["{a}"], colour="red")


def test_unknown_set_lists_the_available_names(pm):
    with pytest.raises(UnknownComponentError, match="amazon-product-paraphrased"):
        PromptGenerator("no-such-set", plugins=pm)


def test_a_set_object_or_list_is_used_as_is(pm):
    custom = PromptTemplateSet(name="faq", templates=["What is {title}?"])
    assert PromptGenerator(custom, plugins=pm).generate([{"title": "Z"}]) == ["What is Z?"]
    assert PromptGenerator(["Why {title}?"], plugins=pm).generate([{"title": "Z"}]) == ["Why Z?"]
