"""End to end: the Pipeline from a TOML config on a tiny model; resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetunekit.config import load_config
from finetunekit.errors import ConfigError
from finetunekit.pipeline import Pipeline
from pipeline_support import config_toml, make_source, make_tiny_model  # noqa: F401

pytest.importorskip("torch")
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    return make_tiny_model(root), make_source(root)


def write_config(tmp_path, assets, **kwargs) -> Path:
    model, source = assets
    path = tmp_path / "run.toml"
    path.write_text(config_toml(tmp_path / "run", model, source, **kwargs), encoding="utf-8")
    return path


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def test_a_run_writes_every_artifact_and_a_rerun_repeats_nothing(tmp_path, assets, pm):
    config = load_config(write_config(tmp_path, assets))
    report = Pipeline.from_config(config, plugins=pm).run()
    run = Path(config.run_dir)

    assert set(report.summary["model"]) == {"base", "fine-tuned"}
    assert set(report.summary["split"]) == {"train-questions", "paraphrased", "unseen-products"}
    for name in ("data/train.jsonl", "data/test.jsonl", "examples/train.jsonl", "examples/validation.json",
                 "train/fine_tuned_model.json", "report/summary.csv", "report/report.html"):
        assert (run / name).is_file(), name
    first = manifest(run)
    assert all(first["stages"][s]["status"] == "completed" for s in ("prepare", "train", "evaluate"))
    assert first["stages"]["prepare"]["data_fingerprint"]
    assert first["packages"]["finetunekit"]

    again = Pipeline.from_config(config, plugins=pm).run()
    second = manifest(run)
    assert second["stages"]["prepare"] == first["stages"]["prepare"]
    assert second["stages"]["train"] == first["stages"]["train"]
    assert second["stages"]["evaluate"] == first["stages"]["evaluate"]
    assert again.summary[["model", "split", "metric", "n"]].equals(report.summary[["model", "split", "metric", "n"]])


def test_a_changed_config_is_refused_unless_fresh(tmp_path, assets, pm):
    path = write_config(tmp_path, assets)
    Pipeline.from_config(path, plugins=pm).prepare()
    changed = load_config(path).model_copy(update={"seed": 6})
    with pytest.raises(ConfigError, match="different config"):
        Pipeline.from_config(changed, plugins=pm)
    Pipeline.from_config(changed, plugins=pm, fresh=True).prepare()
    assert manifest(Path(changed.run_dir))["seed"] == 6


def test_evaluate_without_training_is_refused(tmp_path, assets, pm):
    pipeline = Pipeline.from_config(write_config(tmp_path, assets), plugins=pm)
    with pytest.raises(ConfigError, match="no trained model"):
        pipeline.evaluate()


def test_a_killed_run_resumes_from_its_checkpoint_without_repeating_finished_stages(tmp_path, assets):
    path = write_config(tmp_path, assets, epochs=40)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-m", "finetunekit.cli", "run", str(path)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list((run / "train").glob("checkpoints/checkpoint-*/trainer_state.json")):
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed = manifest(run)
    assert killed["stages"]["prepare"]["status"] == "completed"
    assert killed["stages"]["train"]["status"] == "running"

    result = subprocess.run([sys.executable, "-m", "finetunekit.cli", "train", str(path)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    resumed = manifest(run)
    assert resumed["stages"]["prepare"] == killed["stages"]["prepare"]
    assert resumed["stages"]["train"]["status"] == "completed"
    tuned = json.loads((run / "train" / "fine_tuned_model.json").read_text())
    assert "checkpoint-" in (tuned["details"].get("resumed_from") or "")


def test_changing_only_evaluation_settings_reevaluates_without_retraining(tmp_path, assets, pm):
    config = load_config(write_config(tmp_path, assets))
    Pipeline.from_config(config, plugins=pm).run()
    run = Path(config.run_dir)
    before = manifest(run)
    evaluation = config.evaluation.model_copy(update={"limit": 2})
    report = Pipeline.from_config(config.model_copy(update={"evaluation": evaluation}), plugins=pm).run()
    after = manifest(run)
    assert after["stages"]["train"] == before["stages"]["train"]
    assert before["stages"]["evaluate"]["questions"] == {"train-questions": 4, "paraphrased": 4, "unseen-products": 3}
    assert after["stages"]["evaluate"]["questions"] == {"train-questions": 2, "paraphrased": 2, "unseen-products": 2}
    per_split = report.summary[report.summary.metric != "confidence_auroc"]  # that row spans the splits
    assert set(per_split["n"]) == {2}


@pytest.mark.parametrize("status", ["running", "failed"])
def test_fresh_starts_over_an_interrupted_or_failed_training_run(tmp_path, assets, pm, status):
    # the local trainer has nothing running elsewhere; the run directory's lock proves no process works in it
    path = write_config(tmp_path, assets)
    pipeline = Pipeline.from_config(path, plugins=pm)
    pipeline.prepare()
    pipeline.manifest.data["stages"]["train"] = {"status": status}
    pipeline.manifest.save()
    fresh = Pipeline.from_config(path, plugins=pm, fresh=True)
    assert fresh.manifest.data["stages"] == {}
    assert not (tmp_path / "run" / "examples" / "train.jsonl").exists()


def test_a_failed_first_prepare_does_not_lock_the_run_directory(tmp_path, assets, pm):
    from finetunekit.errors import DataError

    model, source = assets
    path = tmp_path / "run.toml"
    path.write_text(config_toml(tmp_path / "run", model, tmp_path / "typo.json.gz"), encoding="utf-8")
    with pytest.raises(DataError, match="typo.json.gz"):
        Pipeline.from_config(path, plugins=pm).prepare()
    path.write_text(config_toml(tmp_path / "run", model, source), encoding="utf-8")
    prepared = Pipeline.from_config(path, plugins=pm).prepare()
    assert len(prepared.examples) == 11
    assert manifest(tmp_path / "run")["config"]["dataset"]["source"] == source.as_posix()


MINIMAL = {"dataset": {"source": "rows.jsonl"}, "prompts": {"train": "amazon-product"}, "formatter": "amazon-product"}


def test_connection_options_do_not_change_the_training_fingerprint():
    from finetunekit.config import parse_config

    def fingerprints(**options):
        return parse_config({**MINIMAL, "trainer": {"name": "openai", "options": options}}).stage_fingerprints()

    assert fingerprints(timeout=5)["train"] == fingerprints(timeout=500, max_retries=2)["train"]
    assert fingerprints(n_epochs=2)["train"] != fingerprints(n_epochs=3)["train"]


def test_a_client_object_in_the_options_is_recorded_by_its_type():
    from finetunekit.config import parse_config

    config = parse_config({**MINIMAL, "trainer": {"name": "openai", "options": {"client": object()}}})
    assert config.to_record()["trainer"]["options"]["client"] == "<object>"
    assert config.stage_fingerprints()["train"]
