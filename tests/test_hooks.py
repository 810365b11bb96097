"""One test per hook: a small plugin registered on a fresh manager is found by name and works.

Each plugin is registered for the test only and unregistered in ``finally``; after that its
component must be gone again (registries are collected from the manager at each look-up).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from finetunekit import hookimpl
from finetunekit.backends.local.sources import ModelSource, resolve_model
from finetunekit.chat import ChatModel
from finetunekit.component import ComponentOptions, option
from finetunekit.data.cleaning import CleaningRules
from finetunekit.data.dataset import Dataset
from finetunekit.data.loaders import DatasetLoader
from finetunekit.errors import ConfigError
from finetunekit.evaluation.base import Metric
from finetunekit.examples.build import build_examples
from finetunekit.examples.formatters import ResponseFormatter, resolve_formatter
from finetunekit.examples.prompts import PromptGenerator, PromptTemplateSet
from finetunekit.hookspecs import DEPRECATED_HOOKS, HOOK_NAMES
from finetunekit.plugins import create_plugin_manager
from finetunekit.registry import UnknownComponentError, get_chat_model, get_metric, get_trainer, registry_for
from finetunekit.training import FineTunedModel, Trainer

ROWS = [{"_row_id": "r1", "title": "Blue Kettle", "content": "Boils water fast."},
        {"_row_id": "r2", "title": "Red Lamp", "content": "Lights a desk."}]


@pytest.fixture
def pm():
    """A fresh manager: the built-ins only, no installed plugins."""
    return create_plugin_manager(load_entrypoints=False)


def assert_gone(pm, hook: str, name: str) -> None:
    """After unregistering, the component is unknown again."""
    with pytest.raises(UnknownComponentError):
        registry_for(hook, pm).get(name)


def test_every_hook_has_a_test_here():
    tested = {name[len("test_"):] for name in globals() if name.startswith("test_register_")}
    assert tested == set(HOOK_NAMES) | set(DEPRECATED_HOOKS)


def test_register_prompt_templates(pm):
    class TemplatesPlugin:
        @hookimpl
        def register_prompt_templates(self, register):
            register(PromptTemplateSet(name="hook-questions", templates=["Is {title} any good?"]))

    try:
        pm.register(TemplatesPlugin(), name="templates-plugin")
        registry = registry_for("register_prompt_templates", pm)
        assert registry.plugin_of("hook-questions") == "templates-plugin"
        generator = PromptGenerator("hook-questions", plugins=pm)
        assert generator.generate(ROWS) == ["Is Blue Kettle any good?", "Is Red Lamp any good?"]
    finally:
        pm.unregister(name="templates-plugin")
    assert_gone(pm, "register_prompt_templates", "hook-questions")


def test_register_response_formatters(pm):
    class Shouty(ResponseFormatter):
        name = "shouty"

        def format(self, row):
            return f"{row['title'].upper()}! {row['content']}"

    class FormattersPlugin:
        @hookimpl
        def register_response_formatters(self, register):
            register(Shouty)

    try:
        pm.register(FormattersPlugin(), name="formatters-plugin")
        formatter = resolve_formatter("shouty", plugins=pm)
        assert isinstance(formatter, Shouty)
        assert formatter.format(ROWS[0]) == "BLUE KETTLE! Boils water fast."
        examples = build_examples(ROWS, ["What is {title}?"], "shouty", plugins=pm)
        assert examples.assistant_answers() == ["BLUE KETTLE! Boils water fast.", "RED LAMP! Lights a desk."]
    finally:
        pm.unregister(name="formatters-plugin")
    assert_gone(pm, "register_response_formatters", "shouty")


class PipeLoader(DatasetLoader):
    """``title|content`` lines."""

    name = "pipe"
    suffixes = (".pipe",)

    def iter_records(self, path, **options):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                title, _, content = line.rstrip("\n").partition("|")
                yield number, {"title": title, "content": content}


def test_register_dataset_loaders(pm, tmp_path):
    class LoadersPlugin:
        @hookimpl
        def register_dataset_loaders(self, register):
            register(PipeLoader())

    source = tmp_path / "catalog.txt"
    source.write_text("Blue Kettle|Boils water fast.\nRed Lamp|Lights a desk.\n", encoding="utf-8")
    by_suffix = tmp_path / "catalog.pipe"
    by_suffix.write_text("Green Mug|Holds tea.\n", encoding="utf-8")
    try:
        pm.register(LoadersPlugin(), name="loaders-plugin")
        rows = Dataset.load(source, format="pipe", plugins=pm).records()
        assert [(r["title"], r["content"]) for r in rows] == [("Blue Kettle", "Boils water fast."),
                                                               ("Red Lamp", "Lights a desk.")]
        assert [r["title"] for r in Dataset.load(by_suffix, plugins=pm).records()] == ["Green Mug"]
    finally:
        pm.unregister(name="loaders-plugin")
    assert_gone(pm, "register_dataset_loaders", "pipe")


class MemoTrainer(Trainer):
    """Writes the answers it was shown into run_dir; the result's model is that file."""

    name = "memo"

    class Options(ComponentOptions):
        suffix: str = option("", description="Appended to every answer.")

    def train(self, examples, validation=None, *, run_dir):
        path = Path(run_dir) / "memo.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        answers = [a + self.options.suffix for a in examples.assistant_answers()]
        path.write_text(json.dumps(answers), encoding="utf-8")
        return FineTunedModel(backend="memo", base_model="none", model=str(path))


def test_register_trainers(pm, tmp_path):
    class TrainersPlugin:
        @hookimpl
        def register_trainers(self, register):
            register(MemoTrainer)

    try:
        pm.register(TrainersPlugin(), name="trainers-plugin")
        trainer = get_trainer("memo", plugins=pm, suffix=" (memo)")
        examples = build_examples(ROWS, ["What is {title}?"], "{content}")
        tuned = trainer.train(examples, run_dir=tmp_path / "run")
        assert json.loads(Path(tuned.model).read_text()) == ["Boils water fast. (memo)", "Lights a desk. (memo)"]
        with pytest.raises(ConfigError, match="epochs"):  # its Options model validates the options
            get_trainer("memo", plugins=pm, epochs=3)
    finally:
        pm.unregister(name="trainers-plugin")
    assert_gone(pm, "register_trainers", "memo")


class ReverseChat(ChatModel):
    """Answers with the question reversed."""

    name = "reverse"

    def generate(self, conversations):
        return [messages[-1]["content"][::-1] for messages in conversations]


def test_register_chat_models(pm, tmp_path):
    class ChatPlugin:
        @hookimpl
        def register_chat_models(self, register):
            register(ReverseChat)

    try:
        pm.register(ChatPlugin(), name="chat-plugin")
        model = get_chat_model("reverse", plugins=pm, answer_cache_dir=str(tmp_path / "cache"))
        assert model.answer(["abc", [{"role": "user", "content": "kettle"}]]) == ["cba", "elttek"]
        assert len(model.answer_cache) == 2  # answers were cached under the given folder
        tuned = FineTunedModel(backend="reverse", base_model="none", model="-")
        assert tuned.chat_model(plugins=pm).answer(["xy"]) == ["yx"]
    finally:
        pm.unregister(name="chat-plugin")
    assert_gone(pm, "register_chat_models", "reverse")


class Shouting(Metric):
    """1 for an answer in capitals, else 0."""

    name = "shouting"
    reference = "none"

    def score(self, answer, reference):
        return 1.0 if answer.isupper() else 0.0


def test_register_metrics(pm):
    class MetricsPlugin:
        @hookimpl
        def register_metrics(self, register):
            register(Shouting)

    try:
        pm.register(MetricsPlugin(), name="metrics-plugin")
        metric = get_metric("shouting", plugins=pm)
        scores = [metric.score(a, "") for a in ["LOUD", "quiet", "ALSO LOUD", "no"]]
        assert scores == [1.0, 0.0, 1.0, 0.0]
        assert metric.aggregate(scores) == 0.5
    finally:
        pm.unregister(name="metrics-plugin")
    assert_gone(pm, "register_metrics", "shouting")


class FolderSource(ModelSource):
    """A model folder made under the cache dir, with a marker file."""

    def __init__(self, name):
        self.name = name

    def resolve(self, cache_dir=None):
        folder = Path(cache_dir) / self.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")
        return folder


def test_register_model_sources(pm, tmp_path):
    class SourcesPlugin:
        @hookimpl
        def register_model_sources(self, register):
            register(FolderSource("hook-model"))

    try:
        pm.register(SourcesPlugin(), name="sources-plugin")
        resolved = Path(resolve_model("hook-model", plugins=pm, cache_dir=tmp_path))
        assert resolved == tmp_path / "hook-model" and (resolved / "config.json").is_file()
        assert "smollm2-135m-instruct" in registry_for("register_model_sources", pm)  # built-in kept
    finally:
        pm.unregister(name="sources-plugin")
    assert_gone(pm, "register_model_sources", "hook-model")


def test_register_cleaning_rules(pm):
    class RulesPlugin:
        @hookimpl
        def register_cleaning_rules(self, register):
            register(CleaningRules(name="hook-junk", junk_contents=("N/A",), remove_patterns=(r"\[ad\]",)))

    rows = [*ROWS, {"_row_id": "r3", "title": "Old Radio", "content": "n/a"},
            {"_row_id": "r4", "title": "Desk", "content": "Solid oak. [ad] Buy now"}]
    try:
        pm.register(RulesPlugin(), name="rules-plugin")
        cleaned = Dataset.from_records(rows).clean(rules=["hook-junk"], plugins=pm)
        kept = cleaned.records()
        assert [r["_row_id"] for r in kept] == ["r1", "r2", "r4"]
        assert kept[-1]["content"] == "Solid oak. Buy now"  # the boilerplate was cut out
        assert cleaned.clean_report.removed == {"junk_content": 1}
    finally:
        pm.unregister(name="rules-plugin")
    assert_gone(pm, "register_cleaning_rules", "hook-junk")
    # without the rules, the junk row stays
    assert len(Dataset.from_records(rows).clean(plugins=pm).records()) == 4


def test_register_models(pm, tmp_path):
    class OldSourcesPlugin:
        @hookimpl
        def register_models(self, register):
            register(FolderSource("old-model"))

    try:
        with pytest.warns(DeprecationWarning, match="register_model_sources"):
            pm.register(OldSourcesPlugin(), name="old-sources-plugin")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # looking it up does not warn again
            sources = registry_for("register_model_sources", pm)
        assert sources.plugin_of("old-model") == "old-sources-plugin"
        assert Path(resolve_model("old-model", plugins=pm, cache_dir=tmp_path)) == tmp_path / "old-model"
    finally:
        pm.unregister(name="old-sources-plugin")
    assert_gone(pm, "register_model_sources", "old-model")
