"""Typed registries: duplicates name both plugins, unknown names list what exists."""

from __future__ import annotations

import pickle

import pytest

import finetunekit
from finetunekit.errors import DataError, MissingDependencyError
from finetunekit.examples.prompts import PromptTemplateSet
from finetunekit.registry import (
    DuplicateComponentError,
    InvalidComponentError,
    UnknownComponentError,
    registry_for,
)


class SetPlugin:
    """A class-based plugin registering the template sets it is given."""

    def __init__(self, *sets: PromptTemplateSet) -> None:
        self.sets = sets

    @finetunekit.hookimpl
    def register_prompt_templates(self, register):
        for template_set in self.sets:
            register(template_set)


def test_duplicate_names_both_plugins(pm):
    pm.register(SetPlugin(PromptTemplateSet(name="amazon-product", templates=["{title}?"])), name="shadow")
    with pytest.raises(DuplicateComponentError) as info:
        registry_for("register_prompt_templates", pm)
    err = info.value
    assert (err.first_plugin, err.second_plugin, err.name) == ("finetunekit.builtin.amazon", "shadow", "amazon-product")
    assert "'finetunekit.builtin.amazon'" in str(err) and "'shadow'" in str(err)


def test_duplicate_between_two_third_party_plugins(pm):
    faq = PromptTemplateSet(name="faq", templates=["What is {title}?"])
    pm.register(SetPlugin(faq), name="first")
    pm.register(SetPlugin(faq), name="second")
    with pytest.raises(DuplicateComponentError, match="'first'.*'second'"):
        registry_for("register_prompt_templates", pm)


def test_unknown_component_lists_available_names(pm):
    with pytest.raises(UnknownComponentError) as info:
        registry_for("register_prompt_templates", pm).get("nope")
    assert info.value.available == ["amazon-product", "amazon-product-paraphrased", "amazon-product-varied"]
    assert "'amazon-product', 'amazon-product-paraphrased', 'amazon-product-varied'" in str(info.value)


def test_invalid_component_names_the_plugin(pm):
    class Wrong:
        @finetunekit.hookimpl
        def register_prompt_templates(self, register):
            register({"name": "dict-not-a-set"})

    pm.register(Wrong(), name="wrong")
    with pytest.raises(InvalidComponentError, match="plugin 'wrong'.*expected a PromptTemplateSet"):
        registry_for("register_prompt_templates", pm)


def test_registry_reports_which_plugin_registered_what(pm):
    pm.register(SetPlugin(PromptTemplateSet(name="faq", templates=["{q}"])), name="faq-plugin")
    registry = registry_for("register_prompt_templates", pm)
    assert registry.plugin_of("faq") == "faq-plugin"
    assert registry.plugin_of("amazon-product") == "finetunekit.builtin.amazon"
    assert "faq" in registry and len(registry) == 4  # faq and the three built-in Amazon sets
    assert [name for name, _ in registry] == registry.names()


@pytest.mark.parametrize(
    "error",
    [
        UnknownComponentError("trainer", "x", ["local", "openai"]),
        DuplicateComponentError("metric", "m", "a", "b"),
        MissingDependencyError("torch", "pip install 'finetunekit[local]'"),
        DataError("bad", path="f.jsonl", line=3, column=7, field="title"),
    ],
)
def test_errors_survive_pickling_with_their_details(error):
    # Errors cross process boundaries (data-loader workers, process pools).
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)
