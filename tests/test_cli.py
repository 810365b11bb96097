"""The finetunekit command: each subcommand's success and its error path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetunekit.cli import main
from pipeline_support import config_toml, make_source, make_tiny_model

SRC = Path(__file__).resolve().parents[1] / "src"

DUPLICATE_PLUGIN = '''\
import finetunekit

@finetunekit.hookimpl
def register_prompt_templates(register):
    register(finetunekit.PromptTemplateSet(name="amazon-product", templates=["Hi {title}"]))
'''


def installed(tmp_path: Path, module: str, source: str) -> Path:
    """A site folder holding ``module`` and a dist-info that names it in our entry-point group."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[finetunekit]\n{module} = {module}\n", encoding="utf-8")
    return site


def cli(*args: str, site: Path | None = None) -> subprocess.CompletedProcess:
    paths = [str(site)] if site else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(SRC)]), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "finetunekit.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_templates_lists_each_set_with_its_plugin(capsys):
    assert main(["templates"]) == 0
    out = capsys.readouterr().out
    assert "amazon-product  (5 templates, plugin finetunekit.builtin.amazon)" in out
    assert "amazon-product-paraphrased" in out


def test_templates_with_a_clashing_installed_plugin_fails_in_one_line(tmp_path):
    result = cli("templates", site=installed(tmp_path, "clashing_templates", DUPLICATE_PLUGIN))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "finetunekit.builtin.amazon" in result.stderr and "clashing_templates" in result.stderr


def test_plugins_lists_built_in_and_installed_plugins(tmp_path):
    result = cli("plugins", site=installed(tmp_path, "clashing_templates", DUPLICATE_PLUGIN))
    assert result.returncode == 0, result.stderr
    assert "finetunekit.builtin.amazon  [built-in]  register_cleaning_rules, register_prompt_templates" in result.stdout
    assert "clashing_templates  [installed]  register_prompt_templates" in result.stdout


def test_plugins_with_a_broken_installed_plugin_fails_in_one_line(tmp_path):
    result = cli("plugins", site=installed(tmp_path, "broken_plugin", "import not_a_module_anywhere\n"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "broken_plugin" in result.stderr


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("cli-assets")
    return make_tiny_model(root), make_source(root)


@pytest.fixture
def config(tmp_path, assets):
    model, source = assets
    path = tmp_path / "run.toml"
    path.write_text(config_toml(tmp_path / "run", model, source), encoding="utf-8")
    return path


def test_prepare_prints_the_validation_report(config, capsys):
    assert main(["prepare", str(config)]) == 0
    out = capsys.readouterr().out
    assert "11 training rows, 3 held-out rows, 11 examples" in out
    assert "epochs" in out.lower()


def test_prepare_of_a_missing_source_names_the_file(tmp_path, assets, capsys):
    model, _ = assets
    path = tmp_path / "run.toml"
    path.write_text(config_toml(tmp_path / "run", model, tmp_path / "absent.json.gz"), encoding="utf-8")
    assert main(["prepare", str(path)]) == 2
    err = capsys.readouterr().err
    assert "absent.json.gz" in err and err.count("\n") == 1


def test_train_then_evaluate(config, capsys):
    assert main(["train", str(config)]) == 0
    assert "fine-tuned model (local)" in capsys.readouterr().out
    assert main(["evaluate", str(config)]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned" in out and "report.md" in out


def test_train_with_a_bad_trainer_option_names_its_path(tmp_path, assets, capsys):
    model, source = assets
    path = tmp_path / "run.toml"
    path.write_text(config_toml(tmp_path / "run", model, source).replace("epochs = 1", "epochs = -1"))
    assert main(["train", str(path)]) == 2
    assert "trainer.options.epochs" in capsys.readouterr().err


def test_evaluate_offers_no_fresh_start(config, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", str(config), "--fresh"])
    assert "unrecognized arguments: --fresh" in capsys.readouterr().err


def test_evaluate_before_training_says_what_to_run(config, capsys):
    assert main(["evaluate", str(config)]) == 2
    assert "finetunekit train" in capsys.readouterr().err


def test_run_end_to_end_prints_the_summary(config, capsys):
    assert main(["run", str(config)]) == 0
    out = capsys.readouterr().out
    assert "train-questions" in out and "unseen-products" in out and "format" in out


def test_run_with_an_unknown_key_fails_in_one_line_and_debug_shows_the_traceback(tmp_path, assets, capsys):
    model, source = assets
    path = tmp_path / "run.toml"
    path.write_text(config_toml(tmp_path / "run", model, source, extra="sed = 3"), encoding="utf-8")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sed:" in err
    assert main(["--debug", "run", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_two_installed_plugins_with_one_entry_point_name_fail_naming_both(tmp_path):
    site = installed(tmp_path, "first_plugin", "")
    second = site / "second_plugin-1.0.dist-info"
    second.mkdir()
    (second / "METADATA").write_text("Metadata-Version: 2.1\nName: second_plugin\nVersion: 1.0\n")
    (second / "entry_points.txt").write_text("[finetunekit]\nfirst_plugin = second_plugin\n")
    (site / "second_plugin.py").write_text("")
    result = cli("plugins", site=site)
    assert result.returncode == 2
    assert "first_plugin" in result.stderr and "second_plugin" in result.stderr
