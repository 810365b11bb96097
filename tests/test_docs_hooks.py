"""The hook reference documents every hook in hookspecs.py and each of its arguments."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from finetunekit import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugin_hooks.md"


def spec_functions():
    return [getattr(hookspecs, name) for name in hookspecs.HOOK_NAMES]


def test_hook_names_match_the_module():
    declared = {
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, "finetunekit_spec")
    }
    assert declared == set(hookspecs.HOOK_NAMES) | set(hookspecs.DEPRECATED_HOOKS)


@pytest.mark.parametrize("spec", spec_functions(), ids=lambda f: f.__name__)
def test_every_hook_and_argument_is_documented(spec):
    text = DOC.read_text(encoding="utf-8")
    args = list(inspect.signature(spec).parameters)
    heading = f"## {spec.__name__}({', '.join(args)})"
    assert heading in text, f"docs/plugin_hooks.md lacks the heading {heading!r}"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    for arg in args:
        assert re.search(rf"^- `{arg}`:", section, re.MULTILINE), f"{spec.__name__}: argument {arg!r} undocumented"


@pytest.mark.parametrize("spec", spec_functions(), ids=lambda f: f.__name__)
def test_every_hookspec_docstring_documents_its_arguments(spec):
    doc = inspect.getdoc(spec) or ""
    for arg in inspect.signature(spec).parameters:
        assert f":param {arg}:" in doc
