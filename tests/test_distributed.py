"""finetunekit.distributed: plain calls in one process; real collectives in two (torchrun, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetunekit import distributed

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture
def single_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_in_one_process_every_helper_is_a_plain_call(single_process):
    assert not distributed.launched()
    assert (distributed.rank(), distributed.local_rank(), distributed.world_size()) == (0, 0, 1)
    assert distributed.is_main_process()
    distributed.barrier()
    assert distributed.main_first(lambda: "main", others=lambda: "other") == "main"
    assert distributed.from_main(lambda: 7) == 7
    assert distributed.split_map(lambda xs: [x * 2 for x in xs], range(4)) == [0, 2, 4, 6]
    with distributed.split_work():
        assert not distributed.work_is_split()  # nothing to split with one process
    assert distributed.local_device("cuda") == "cuda"


def test_the_launchers_environment_gives_rank_and_device(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.launched() and distributed.world_size() == 4
    assert (distributed.rank(), distributed.local_rank(), distributed.is_main_process()) == (3, 1, False)
    assert distributed.local_device("cuda") == "cuda:1"
    assert distributed.local_device("cpu") == "cpu"


def test_importing_the_module_does_not_import_torch():
    code = "import sys, finetunekit.distributed as d; d.rank(); d.is_main_process(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_two_processes_share_work_in_order_and_raise_each_others_errors(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("accelerate")
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(TESTS / "distributed_worker.py"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r, seen in enumerate(ranks):
        assert (seen["rank"], seen["world_size"], seen["launched"]) == (r, 2, True)
        # each item answered once, in order; the first share by rank 0, the rest by rank 1
        assert seen["split"] == [[0, 0], [1, 0], [2, 0], [3, 1], [4, 1], [5, 1], [6, 1]]
        assert seen["from_main"] == "chosen by rank 0"
        assert seen["main_error"] == {"error": ["ConfigError", "data.csv, line 3: bad row"]}
        assert seen["split_error"] == {"error": ["ValueError", "rank 1 failed on [3, 4]"]}
        assert seen["work_is_split"] is True and seen["work_is_split_after"] is False
    # a local model: each process generates its share; a hosted one: rank 0 all; the cache is rank 0's
    split, hosted = ranks[0]["echo"], ranks[0]["hosted-echo"]
    assert split["first"] == ["q0 (rank 0)", "q1 (rank 0)", "q2 (rank 1)", "q3 (rank 1)", "q4 (rank 1)"]
    assert split["answers"] == split["first"] + ["q5 (rank 1)"]  # one new question: the last share's
    assert (ranks[0]["echo"]["generated"], ranks[1]["echo"]["generated"]) == (["q0", "q1"], ["q2", "q3", "q4", "q5"])
    assert hosted["answers"] == [f"q{i} (rank 0)" for i in range(6)]
    assert (ranks[0]["hosted-echo"]["generated"], ranks[1]["hosted-echo"]["generated"]) == ([f"q{i}" for i in range(6)], [])
    assert ranks[1]["echo"]["answers"] == split["answers"] and ranks[1]["hosted-echo"]["answers"] == hosted["answers"]
    assert len(list((tmp_path / "cache" / "echo").rglob("*.json"))) == 6
    assert ranks[0]["main_first"] == "wrote"
    assert ranks[1]["main_first"] == "rank 0 wrote this"  # read after rank 0 wrote it
