"""Question augmentation: several templates per row, seeded, never a paraphrase template."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetunekit.errors import TemplateError
from finetunekit.examples.build import build_examples
from finetunekit.examples.prompts import PromptGenerator

ROWS = [{"_row_id": i, "title": f"Item {i}", "content": f"Facts {i}."} for i in range(20)]


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), k=st.integers(1, 5))
def test_questions_per_row_are_distinct_seeded_and_extend_the_single_question(pm, seed, k):
    generator = PromptGenerator("amazon-product", seed=seed, plugins=pm)
    again = PromptGenerator("amazon-product", seed=seed, plugins=pm)
    for index, row in enumerate(ROWS):
        chosen = generator.questions_for(row, index, k)
        assert [q.text for q in chosen] == [q.text for q in again.questions_for(row, index, k)]
        assert len({q.template for q in chosen}) == k
        assert chosen[0] == generator.question(row, index)  # k = 1 is today's choice
        assert chosen == generator.questions_for(row, index, 5)[:k]  # more questions only add


def test_other_seeds_choose_other_templates(pm):
    def templates(seed):
        generator = PromptGenerator("amazon-product", seed=seed, plugins=pm)
        return [tuple(q.template for q in generator.questions_for(r, i, 2)) for i, r in enumerate(ROWS)]

    assert templates(1) != templates(2)


def test_augmented_examples_use_training_templates_only(pm):
    from finetunekit.builtin.amazon import AMAZON_PRODUCT, AMAZON_PRODUCT_PARAPHRASED

    examples = build_examples(ROWS, PromptGenerator("amazon-product", seed=7, plugins=pm), "amazon-product",
                              questions_per_row=3, plugins=pm)
    used = {m["template"] for m in examples.metadata}
    assert len(examples) == 60 and used <= set(AMAZON_PRODUCT.templates)
    assert not used & set(AMAZON_PRODUCT_PARAPHRASED.templates)
    assert [m["row_id"] for m in examples.metadata] == [i for i in range(20) for _ in range(3)]
    assert len(build_examples(ROWS, "amazon-product", "amazon-product", questions_per_row="all", plugins=pm)) == 100


@pytest.mark.parametrize("k", [0, 6, "some", True])
def test_an_impossible_number_of_questions_is_a_template_error(pm, k):
    with pytest.raises(TemplateError, match="questions_per_row"):
        PromptGenerator("amazon-product", plugins=pm).questions_for(ROWS[0], 0, k)
