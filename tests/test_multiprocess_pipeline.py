"""The whole pipeline under ``torchrun --nproc_per_node 2`` on CPU (gloo) with the tiny model:
one set of run files written by rank 0, the same examples and answers as one process, half the
optimizer steps, and a run killed mid-training (both processes) that resumes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetunekit.config import load_config
from finetunekit.pipeline import Pipeline
from finetunekit.registry import get_chat_model
from pipeline_support import config_toml, make_source, make_tiny_model

pytest.importorskip("torch")
pytest.importorskip("accelerate")
psutil = pytest.importorskip("psutil")  # an accelerate dependency
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    return make_tiny_model(root), make_source(root, rows=80)


def write_config(path: Path, run_dir: Path, assets) -> Path:
    """16 training examples (4 batches of 4 per epoch), 4 epochs, a checkpoint every 2 steps."""
    text = config_toml(run_dir, *assets, epochs=4)
    for old, new in (("sample_size = 14", "sample_size = 19"), ("save_steps = 1", "save_steps = 2")):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def torchrun(config: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "finetunekit.cli", "run", str(config)]


def answers(run: Path, model: str) -> list[dict[str, str]]:
    with open(run / "report" / "answers.csv", newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["model"] == model]


def files(run: Path) -> set[str]:
    """The run's files, less the checkpoints and answer-cache entries (named by step and hash)."""
    return {p.relative_to(run).as_posix() for p in run.rglob("*")
            if p.is_file() and not {"checkpoints", "answers"} & set(p.relative_to(run).parts)}


def details(run: Path) -> dict:
    return json.loads((run / "train" / "fine_tuned_model.json").read_text(encoding="utf-8"))["details"]


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text(encoding="utf-8"))


def test_two_processes_match_one_and_a_killed_run_resumes(tmp_path, assets, pm):
    one = tmp_path / "one"
    Pipeline.from_config(load_config(write_config(tmp_path / "one.toml", one, assets)), plugins=pm).run()

    two = tmp_path / "two"
    config = write_config(tmp_path / "two.toml", two, assets)
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # both processes and the launcher are killed (SIGKILL) once the first checkpoint is complete;
    # the launcher starts each worker in a session of its own, so each is killed by its id
    launcher = psutil.Popen(torchrun(config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while not list((two / "train" / "checkpoints").glob("checkpoint-*/trainer_state.json")):
            assert launcher.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
    finally:
        processes = [*launcher.children(recursive=True), launcher]
        for process in processes:
            process.kill()
        psutil.wait_procs(processes, timeout=60)
    assert len(processes) == 3  # the launcher and its two workers
    killed = manifest(two)
    assert killed["stages"]["train"]["status"] == "running"
    assert not (two / "train" / "training.json").exists()

    result = subprocess.run(torchrun(config), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    resumed = manifest(two)
    assert all(resumed["stages"][s]["status"] == "completed" for s in ("prepare", "train", "evaluate"))
    assert resumed["stages"]["prepare"] == killed["stages"]["prepare"]  # prepared once, by rank 0

    # one manifest, one adapter, one report: the same files as the one-process run
    assert files(two) == files(one)
    assert sorted(p.name for p in (two / "train").iterdir() if p.is_dir()) == ["adapter", "checkpoints"]
    for name in ("data/train.jsonl", "data/test.jsonl", "examples/train.jsonl"):
        assert (two / name).read_bytes() == (one / name).read_bytes(), name

    # data-parallel: each optimizer step took 2 x 4 examples, so half the steps; resumed from a checkpoint
    trained, alone = details(two), details(one)
    assert (trained["processes"], alone["processes"]) == (2, 1)
    assert alone["global_step"] == 16 and trained["global_step"] == alone["global_step"] // 2
    assert "checkpoint-" in (trained["resumed_from"] or "")

    # evaluation split across the processes: every question once, in order, the same answers
    base_two, base_one = answers(two, "base"), answers(one, "base")
    assert [(r["split"], r["question"]) for r in base_two] == [(r["split"], r["question"]) for r in base_one]
    assert [r["answer"] for r in base_two] == [r["answer"] for r in base_one]
    assert len(list((two / "answers" / "base").rglob("*.json"))) == len(base_one)  # rank 0 cached them all
    tuned = get_chat_model("local", plugins=pm, model=str(assets[0]), adapter=str(two / "train" / "adapter"),
                           max_new_tokens=6, device="cpu", progress=False)
    tuned_two = answers(two, "fine-tuned")
    assert [r["answer"] for r in tuned_two] == tuned.answer([r["question"] for r in tuned_two])
