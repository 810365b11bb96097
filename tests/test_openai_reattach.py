"""A training process killed mid-poll: the rerun reattaches (one upload, one job in total)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from finetunekit.trainers.openai_job import STATE_FILE
from openai_helpers import fake_trainer, make_examples

CHILD = """
import json, sys
from finetunekit.registry import get_trainer
from finetunekit.plugins import create_plugin_manager
examples = json.loads(sys.argv[3])
trainer = get_trainer("openai", plugins=create_plugin_manager(False), base_url=sys.argv[1],
                      api_key_env="FAKE_KEY", poll_interval_min=0.01, poll_interval_max=0.02)
trainer.train(examples, run_dir=sys.argv[2])
"""


def test_kill_mid_poll_then_rerun_reattaches(fake_openai, pm, tmp_path):
    fake_openai.keep_next_job_running()
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "FAKE_KEY": fake_openai.api_key,
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, fake_openai.url, str(tmp_path),
                              json.dumps(make_examples(12))], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while fake_openai.count("jobs.retrieve") < 3:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never started polling"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["job_id"] == fake_openai.job_ids()[0] and state["status"] == "running"

    fake_openai.complete_job(state["job_id"])
    tuned = fake_trainer(fake_openai, pm).train(make_examples(12), run_dir=tmp_path)
    assert tuned.details["job_id"] == state["job_id"]
    assert fake_openai.uploads == 1 and fake_openai.jobs_created == 1
