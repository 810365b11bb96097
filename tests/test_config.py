"""PipelineConfig: TOML loading, errors that name their path, component checks, docs in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetunekit.config import load_config, parse_config
from finetunekit.config_docs import config_fields, config_reference_markdown
from finetunekit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

#: The fields a config must name (nothing about any one task is a default).
MINIMAL = {"dataset": {"source": "rows.jsonl"}, "prompts": {"train": "amazon-product"}, "formatter": "amazon-product"}


def cfg(**changes):
    """A minimal valid config dict with ``changes`` merged in (one level deep)."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in MINIMAL.items()}
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return data


def test_every_field_is_described():
    for path, _, description in config_fields():
        assert description.strip(), f"config field {path} has no description"


def test_configuration_doc_holds_the_generated_reference():
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert config_reference_markdown() in doc, "regenerate docs/configuration.md (see its last section)"


def test_toml_round_trip(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'run_dir = "x"\nseed = 7\nformatter = "amazon-product"\n[dataset]\nsource = "rows.jsonl"\n'
        'sample_size = 10\n[prompts]\ntrain = "amazon-product"\n[trainer]\nname = "local"\n'
        '[trainer.options]\nepochs = 2\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.seed == 7 and config.dataset.sample_size == 10
    assert config.trainer.options == {"epochs": 2}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"dataset": {"limt": 3}}, "dataset.limt"),
        ({"dataset": {"limit": 0}}, "dataset.limit"),
        ({"evaluation": {"base_model": {"name": "local", "option": {}}}}, "evaluation.base_model.option"),
        ({"seed": "many"}, "seed"),
    ],
)
def test_bad_values_name_their_path(data, path):
    with pytest.raises(ConfigError, match=rf"{path}\b"):
        parse_config(cfg(**data))


def test_a_missing_required_field_is_named_without_echoing_the_config():
    with pytest.raises(ConfigError) as caught:
        parse_config({"dataset": {"source": "x.jsonl"}, "trainer": {"name": "t", "options": {"api_key": "sk-1"}}})
    message = str(caught.value)
    assert "prompts: Field required" in message and "formatter: Field required" in message
    assert "sk-1" not in message


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seed = = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")


def test_trainer_options_are_checked_by_the_trainers_own_model(pm):
    config = parse_config(cfg(trainer={"name": "local", "options": {"epochz": 3}}))
    with pytest.raises(ConfigError, match=r"trainer\.options\.epochz"):
        config.check_components(pm)


def test_unknown_component_names_its_path(pm):
    config = parse_config(cfg(evaluation={"metrics": ["format", "bleurt"]}))
    with pytest.raises(ConfigError, match=r"evaluation\.metrics\[1\].*bleurt"):
        config.check_components(pm)


def test_paraphrased_set_must_differ_from_training(pm):
    config = parse_config(cfg(prompts={"train": "amazon-product", "paraphrased": "amazon-product"}))
    with pytest.raises(ConfigError, match="shares templates"):
        config.check_components(pm)


def test_fingerprint_ignores_run_dir_but_not_settings(pm):
    a = parse_config(cfg(run_dir="a"))
    assert a.fingerprint(pm) == parse_config(cfg(run_dir="b")).fingerprint(pm)
    assert a.fingerprint(pm) != parse_config(cfg(run_dir="a", seed=1)).fingerprint(pm)


def test_options_declared_not_result_changing_are_left_out_of_the_training_fingerprint(pm):
    def train_print(**options):
        return parse_config(cfg(trainer={"name": "openai", "options": options})).stage_fingerprints(pm)["train"]

    assert train_print(timeout=5.0, poll_interval_max=9.0) == train_print()  # declared affects_result=False
    assert train_print(n_epochs=3) != train_print()


def test_metrics_take_options_in_the_config(pm):
    config = parse_config(cfg(evaluation={"metrics": ["rouge_l", {"name": "refusal", "options": {"window": 50}}]}))
    config.check_components(pm)
    assert config.metric_specs() == ["rouge_l", {"name": "refusal", "options": {"window": 50}}]
    bad = parse_config(cfg(evaluation={"metrics": [{"name": "refusal", "options": {"windoww": 50}}]}))
    with pytest.raises(ConfigError, match=r"evaluation\.metrics\[0\]\.options\.windoww"):
        bad.check_components(pm)


def test_a_fine_tuned_backend_without_a_model_option_is_not_handed_one(pm):
    from finetunekit import hookimpl
    from finetunekit.chat import ChatModel
    from finetunekit.training import FineTunedModel, Trainer

    class Echo(ChatModel):
        name = "echo"

        class Options(ChatModel.Options):
            loud: bool = False

        def generate(self, conversations):
            return [c[-1]["content"] for c in conversations]

    class Recorder(Trainer):
        name = "recorder"
        chat_backend = "echo"

        def train(self, examples, validation=None, *, run_dir):
            return FineTunedModel(backend="echo", base_model="none", model="none")

    class Plugin:
        @hookimpl
        def register_chat_models(self, register):
            register(Echo)

        @hookimpl
        def register_trainers(self, register):
            register(Recorder)

    pm.register(Plugin(), name="echo-plugin")
    config = parse_config(cfg(trainer={"name": "recorder"}, evaluation={"base_model": {"name": "echo"},
                                                                        "chat_options": {"loud": True}}))
    config.check_components(pm)  # no "model" option is injected into Echo's options
    with pytest.raises(ConfigError, match=r"evaluation\.(chat_options|base_model\.options)\.loudd"):
        parse_config(cfg(trainer={"name": "recorder"}, evaluation={"base_model": {"name": "echo"},
                                                                   "chat_options": {"loudd": True}})).check_components(pm)


@pytest.mark.parametrize("lookup", ["get_chat_model", "get_trainer"])
def test_a_misplaced_api_key_never_reaches_the_message(lookup, pm):
    import finetunekit

    with pytest.raises(ConfigError) as caught:
        getattr(finetunekit, lookup)("openai", plugins=pm, api_key="sk-SECRET123")
    assert "api_key" in str(caught.value) and "sk-SECRET123" not in str(caught.value)


def test_secret_looking_option_values_are_hidden_but_others_shown():
    from pydantic import BaseModel, ValidationError

    from finetunekit.component import format_validation_error

    class Options(BaseModel):
        api_key: int = 0
        epochs: int = 1

    with pytest.raises(ValidationError) as caught:
        Options.model_validate({"api_key": "sk-SECRET", "epochs": "many"})
    text = format_validation_error(caught.value, "trainer.options")
    assert "sk-SECRET" not in text and "trainer.options.api_key" in text
    assert "'many'" in text
