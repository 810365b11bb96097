"""docs/backends.md shows each built-in backend's current options table."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetunekit.config_docs import component_options_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "backends.md"


@pytest.mark.parametrize(
    ("hook", "name"),
    [("register_trainers", "local"), ("register_chat_models", "local"),
     ("register_trainers", "openai"), ("register_chat_models", "openai")],
)
def test_backend_options_table_is_current(hook, name):
    assert component_options_markdown(hook, name) in DOC.read_text(encoding="utf-8"), (
        f"regenerate the options table of {name} ({hook}) in docs/backends.md"
    )


def test_every_option_is_described():
    from finetunekit.registry import registry_for

    for hook in ("register_trainers", "register_chat_models"):
        for name, cls in registry_for(hook):
            for field, info in cls.Options.model_fields.items():
                assert info.description, f"{hook} {name}: option {field} has no description"
