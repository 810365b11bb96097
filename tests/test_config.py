"""PipelineConfig: TOML loading, errors that name their path, component checks, docs in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetunekit.config import PipelineConfig, load_config, parse_config
from finetunekit.config_docs import config_fields, config_reference_markdown
from finetunekit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_every_field_is_described():
    for path, _, description in config_fields():
        assert description.strip(), f"config field {path} has no description"


def test_configuration_doc_holds_the_generated_reference():
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert config_reference_markdown() in doc, "regenerate docs/configuration.md (see its last section)"


def test_toml_round_trip(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'run_dir = "x"\nseed = 7\n[dataset]\nsample_size = 10\n[trainer]\nname = "local"\n'
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
        parse_config(data)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seed = = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")


def test_trainer_options_are_checked_by_the_trainers_own_model(pm):
    config = parse_config({"trainer": {"name": "local", "options": {"epochz": 3}}})
    with pytest.raises(ConfigError, match=r"trainer\.options\.epochz"):
        config.check_components(pm)


def test_unknown_component_names_its_path(pm):
    config = parse_config({"evaluation": {"metrics": ["format", "bleurt"]}})
    with pytest.raises(ConfigError, match=r"evaluation\.metrics\[1\].*bleurt"):
        config.check_components(pm)


def test_paraphrased_set_must_differ_from_training(pm):
    config = parse_config({"prompts": {"train": "amazon-product", "paraphrased": "amazon-product"}})
    with pytest.raises(ConfigError, match="shares templates"):
        config.check_components(pm)


def test_fingerprint_ignores_run_dir_but_not_settings():
    a = PipelineConfig(run_dir="a")
    assert a.fingerprint() == PipelineConfig(run_dir="b").fingerprint()
    assert a.fingerprint() != PipelineConfig(run_dir="a", seed=1).fingerprint()


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
