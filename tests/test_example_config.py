"""examples/amazon_titles.toml is the same configuration as examples/amazon_titles.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from finetunekit.config import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example_module():
    spec = importlib.util.spec_from_file_location("amazon_titles", EXAMPLES / "amazon_titles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_toml_file_and_the_script_describe_the_same_run():
    assert load_config(EXAMPLES / "amazon_titles.toml") == example_module().build_config("local")


@pytest.mark.parametrize("backend", ["local", "openai"])
def test_each_backend_config_names_registered_components_with_valid_options(backend, pm):
    from finetunekit.registry import get_chat_model, get_trainer

    config = example_module().build_config(backend)
    config.check_components(pm)  # raises on an unknown name or an invalid option
    assert config.trainer.name == config.evaluation.base_model.name == backend
    trainer = get_trainer(config.trainer.name, plugins=pm, **config.trainer.options)
    base = get_chat_model(backend, plugins=pm, **{**config.evaluation.chat_options, **config.evaluation.base_model.options})
    assert trainer.options.model == base.options.model  # the base model is the one that is fine-tuned
    assert config.prompts.train == "amazon-product-varied" and config.prompts.paraphrased == "amazon-product-paraphrased"
    assert config.dataset.clean.rules == ["amazon-titles"] and config.formatter == "amazon-product"
    with pytest.raises(ValueError, match="unknown backend"):
        example_module().build_config("nope")


def test_openai_dry_run_prepares_and_estimates_without_a_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = example_module().main(["--backend", "openai", "--dry-run", "--run-dir", str(tmp_path / "run")])
    assert code == 0
    out = capsys.readouterr().out
    assert "billed tokens" in out and "nothing was trained or uploaded" in out
    assert (tmp_path / "run" / "examples" / "train.jsonl").is_file()
    assert not (tmp_path / "run" / "train").exists()
