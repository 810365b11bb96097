"""examples/python_docs: a second task, configured only through a TOML file and its own plugin.

Nothing is installed: the plugin module is registered on a fresh plugin manager (as its entry
point would be), the example's own config file is loaded, and only what makes it fast is
overridden (a tiny random model, a small sample, one epoch, a few short answers).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

import finetunekit
from finetunekit.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "python_docs"
PLUGIN_DIR = EXAMPLE / "plugin"


@pytest.fixture(scope="module")
def plugin_module():
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        yield importlib.import_module("finetunekit_python_docs.plugin")
    finally:
        sys.path.remove(str(PLUGIN_DIR))


@pytest.fixture
def docs_pm(plugin_module):
    pm = finetunekit.create_plugin_manager(load_entrypoints=False)
    pm.register(plugin_module)
    return pm


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("torch")
    from pipeline_support import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_the_shipped_data_holds_real_stdlib_docstrings():
    rows = [json.loads(line) for line in (EXAMPLE / "python_docs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 100
    assert rows == sorted(rows, key=lambda r: (r["module"], r["title"]))
    assert all(set(row) == {"title", "content", "module"} for row in rows)
    assert all(40 <= len(row["content"]) <= 400 for row in rows)
    dedent = next(row for row in rows if row["title"] == "textwrap.dedent")
    assert dedent["content"].startswith("Remove any common leading whitespace")


def test_the_config_names_only_the_plugins_components(docs_pm):
    config = load_config(EXAMPLE / "python_docs.toml")
    config.check_components(docs_pm)
    with pytest.raises(finetunekit.ConfigError, match="python-docs"):  # without the plugin: unknown names
        config.check_components(finetunekit.create_plugin_manager(load_entrypoints=False))


def test_the_cleaning_rules_fix_or_drop_signature_docstrings(docs_pm):
    cleaned = finetunekit.Dataset.from_records(
        [
            {"title": "functools.partial", "content": "partial(func, *args, **keywords) - new function with partial application."},
            {"title": "math.log", "content": "log(x, [base=math.e]) Return the logarithm of x to the given base."},
            {"title": "collections.deque", "content": "deque([iterable[, maxlen]]) --> deque object"},
            {"title": "json.JSONDecodeError", "content": "Subclass of ValueError with the following additional properties:"},
        ]
    ).clean(rules=["python-docs"], plugins=docs_pm)
    assert {row["title"]: row["content"] for row in cleaned.records()} == {
        "functools.partial": "new function with partial application.",
        "math.log": "Return the logarithm of x to the given base.",
    }


def test_the_example_config_runs_through_the_pipeline_on_a_tiny_model(tmp_path, docs_pm, plugin_module, tiny_model):
    data = load_config(EXAMPLE / "python_docs.toml").model_dump()
    data["run_dir"] = str(tmp_path / "run")
    data["dataset"]["source"] = str(EXAMPLE / "python_docs.jsonl")  # the file's path is relative to the repo root
    data["dataset"].update(sample_size=14, test_size=3)
    data["trainer"]["options"].update(model=str(tiny_model), epochs=1, max_length=128, batch_size=4, device="cpu")
    data["evaluation"]["base_model"]["options"]["model"] = str(tiny_model)
    data["evaluation"]["chat_options"].update(max_new_tokens=6, device="cpu")
    data["evaluation"]["limit"] = 3
    config = parse_config(data)

    report = finetunekit.Pipeline(config, plugins=docs_pm).run()

    assert set(report.summary["split"]) == {"train-questions", "paraphrased", "unseen-products"}
    assert set(report.summary["model"]) == {"base", "fine-tuned"}
    run = Path(config.run_dir)
    titles = [json.loads(line)["title"] for line in (run / "data" / "train.jsonl").read_text().splitlines()]
    examples = finetunekit.ExampleSet.from_jsonl(run / "examples" / "train.jsonl")
    assert len(examples) == len(titles) == 11
    templates = plugin_module.PYTHON_DOCS.templates
    for title, question, answer in zip(titles, examples.user_questions(), examples.assistant_answers()):
        assert question in {t.format(title=title) for t in templates}
        assert answer.startswith(f"The Python docs on {title}: ")
    paraphrases = {t.format(title=title) for t in plugin_module.PYTHON_DOCS_PARAPHRASED.templates for title in titles}
    assert not paraphrases & set(examples.user_questions())
