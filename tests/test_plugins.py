"""Plugin managers: built-ins arrive through the hooks, nothing leaks between managers,
and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import finetunekit
from finetunekit.hookspecs import HOOK_NAMES
from finetunekit.plugins import BUILTIN_PLUGINS, create_plugin_manager, plugin_hooks
from finetunekit.examples.prompts import PromptGenerator, PromptTemplateSet
from finetunekit.registry import UnknownComponentError, registry_for


def test_every_hook_is_specified_and_documented(pm):
    for name in HOOK_NAMES:
        caller = getattr(pm.hook, name)
        assert caller.spec is not None, name
        assert ":param register:" in (caller.spec.function.__doc__ or ""), name


def test_builtins_are_plugins_registered_through_the_hooks(pm):
    hooks = plugin_hooks(pm)
    assert set(BUILTIN_PLUGINS) <= set(hooks)
    assert {"register_prompt_templates", "register_response_formatters", "register_cleaning_rules"} <= set(
        hooks["finetunekit.builtin.amazon"]
    )
    assert hooks["finetunekit.data.jsonl"] == ["register_dataset_loaders"]  # each loader module registers itself
    # Built-ins are ordinary plugins: unregistering one removes what it registered.
    pm.unregister(name="finetunekit.builtin.amazon")
    assert registry_for("register_prompt_templates", pm).names() == []
    with pytest.raises(UnknownComponentError):
        PromptGenerator("amazon-product", plugins=pm)


def test_no_state_leaks_between_managers():
    first = create_plugin_manager(load_entrypoints=False)
    second = create_plugin_manager(load_entrypoints=False)
    assert first is not second

    class Faq:
        @finetunekit.hookimpl
        def register_prompt_templates(self, register):
            register(PromptTemplateSet(name="faq", templates=["What is {title}?"]))

    first.register(Faq(), name="faq")
    assert "faq" in registry_for("register_prompt_templates", first)
    assert "faq" not in registry_for("register_prompt_templates", second)
    assert "faq" not in registry_for("register_prompt_templates", create_plugin_manager(load_entrypoints=False))
    # The default manager (plugins=None) is built afresh, so it does not see it either.
    assert "faq" not in registry_for("register_prompt_templates", None)


def test_hookimpl_and_hookspec_are_public():
    from finetunekit import hookspecs

    assert {"hookimpl", "hookspec", "create_plugin_manager"} <= set(finetunekit.__all__)
    for name in finetunekit.__all__:  # every public name resolves
        assert getattr(finetunekit, name) is not None, name
    # finetunekit.hookspec is the marker of every hook, finetunekit.hookimpl the one plugins use
    for name in hookspecs.HOOK_NAMES:
        assert hasattr(getattr(hookspecs, name), "finetunekit_spec"), name
    pm = finetunekit.create_plugin_manager(load_entrypoints=False)

    class Plugin:
        @finetunekit.hookimpl
        def register_prompt_templates(self, register):
            register(finetunekit.PromptTemplateSet(name="public-marker", templates=["What is {title}?"]))

    pm.register(Plugin(), name="public-marker-plugin")
    assert finetunekit.PromptGenerator("public-marker", plugins=pm).generate([{"title": "X"}]) == ["What is X?"]

    class Unmarked:  # a function without finetunekit.hookimpl is not a hook implementation
        def register_prompt_templates(self, register):
            register(finetunekit.PromptTemplateSet(name="unmarked", templates=["Q {title}"]))

    pm.register(Unmarked(), name="unmarked-plugin")
    with pytest.raises(finetunekit.UnknownComponentError):
        finetunekit.PromptGenerator("unmarked", plugins=pm)


HEAVY = ("torch", "transformers", "peft", "openai", "tiktoken", "matplotlib", "accelerate")


def test_import_and_core_use_stay_free_of_heavy_libraries():
    # A fresh interpreter: what finetunekit itself imports, not what other tests loaded.
    script = textwrap.dedent(
        f"""
        import sys, finetunekit
        after_import = [m for m in {HEAVY!r} if m in sys.modules]
        from finetunekit.plugins import create_plugin_manager
        from finetunekit.registry import registry_for
        from finetunekit.hookspecs import HOOK_NAMES
        pm = create_plugin_manager()
        for hook in HOOK_NAMES:
            registry_for(hook, pm)
        rows = [{{"_row_id": i, "title": "T", "content": "C"}} for i in range(3)]
        finetunekit.build_examples(rows, "amazon-product", "amazon-product")
        after_use = [m for m in {HEAVY!r} if m in sys.modules]
        print(after_import, after_use)
        assert not after_import and not after_use, (after_import, after_use)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
