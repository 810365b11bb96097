"""The code in docs/plugins.md runs as documented."""

from __future__ import annotations

import re
import types
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def as_module(code: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(code, f"docs/plugins.md:{name}", "exec"), module.__dict__)
    return module


def test_the_template_plugin_registers_its_set(pm):
    import finetunekit

    plugin = as_module(next(b for b in python_blocks() if "register_prompt_templates" in b), "catalog")
    pm.register(plugin)
    prompts = finetunekit.PromptGenerator("catalog-questions", seed=0, plugins=pm)
    assert prompts.generate([{"title": "Lamp"}])[0] in ("What do you know about Lamp?", "Describe Lamp.")


def test_the_metric_plugin_scores_and_is_found_by_name(pm):
    import finetunekit

    plugin = as_module(next(b for b in python_blocks() if "register_metrics" in b), "opening")
    pm.register(plugin)
    metric = finetunekit.get_metric("opening_words", plugins=pm, words=2)
    assert metric.score("It is a Red Lamp for desks", "Red lamp 40 W") == 1.0
    assert metric.score("A blue chair", "Red lamp, 40 W") == 0.0
