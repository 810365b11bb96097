"""Helpers of the fault-and-abuse tests: CLI subprocesses against the fake OpenAI server, a
test plugin whose components block at a named point (so a test can kill a run there), waits."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from pipeline_support import config_head

SRC = Path(__file__).resolve().parents[1] / "src"

#: A plugin (installed into a site folder by :func:`gated_site`): the fake trainer and chat
#: model, each stopping for good at a point named by a file in $FTK_GATE (which it marks reached).
GATED_PLUGIN = '''\
import os, time
from pathlib import Path

import finetunekit
from finetunekit.testing.fake_backend import FakeChatModel, FakeTrainer


def gate(point):
    folder = os.environ.get("FTK_GATE")
    if folder and Path(folder, point).exists():
        Path(folder, point + ".reached").write_text(str(os.getpid()))
        while True:
            time.sleep(1)


class GatedTrainer(FakeTrainer):
    name = "gated"
    chat_backend = "gated"

    def check(self, examples):
        gate("check")
        return super().check(examples)

    def train(self, examples, validation=None, *, run_dir):
        gate("train")
        return super().train(examples, validation, run_dir=run_dir)


class GatedChatModel(FakeChatModel):
    name = "gated"

    def generate_scored(self, conversations):
        gate("answer")
        return super().generate_scored(conversations)


@finetunekit.hookimpl
def register_trainers(register):
    register(GatedTrainer)


@finetunekit.hookimpl
def register_chat_models(register):
    register(GatedChatModel)
'''


def gated_site(root: Path) -> Path:
    """A site folder holding the gated plugin and a dist-info naming it as a finetunekit plugin."""
    site = root / "site"
    if not site.exists():
        site.mkdir(parents=True)
        (site / "gated_plugin.py").write_text(GATED_PLUGIN, encoding="utf-8")
        info = site / "gated_plugin-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gated_plugin\nVersion: 1.0\n", encoding="utf-8")
        (info / "entry_points.txt").write_text("[finetunekit]\ngated = gated_plugin\n", encoding="utf-8")
    return site


def cli_env(*, site: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI child: our sources (and ``site``) first on the path, offline."""
    paths = ([str(site)] if site else []) + [str(SRC)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "HF_HUB_OFFLINE": "1", **extra}


def start_cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """``finetunekit ARGS`` in a child process; its output goes to temporary files (a pipe
    nobody reads would fill up with progress bars and stop the child)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    child = subprocess.Popen([sys.executable, "-m", "finetunekit.cli", *args], env=env, stdout=out, stderr=err)
    child.output_files = (out, err)  # type: ignore[attr-defined]
    return child


def output(child: subprocess.Popen) -> tuple[str, str]:
    """What ``child`` wrote to stdout and stderr so far."""
    texts = []
    for handle in child.output_files:  # type: ignore[attr-defined]
        handle.seek(0)
        texts.append(handle.read().decode("utf-8", "replace"))
    return texts[0], texts[1]


def finish(child: subprocess.Popen, timeout: float = 300) -> tuple[str, str]:
    """Wait for ``child`` to end; its stdout and stderr."""
    child.wait(timeout=timeout)
    return output(child)


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``finetunekit ARGS`` to the end."""
    return subprocess.run([sys.executable, "-m", "finetunekit.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def wait_for(condition: Callable[[], Any], child: subprocess.Popen | None = None, timeout: float = 120,
             what: str = "the condition") -> None:
    """Poll ``condition`` until true; fail if ``child`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if child is not None and child.poll() is not None:
            raise AssertionError(f"the child ended ({child.returncode}) before {what}: {output(child)[1][-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill(child: subprocess.Popen) -> None:
    """SIGKILL ``child`` and reap it."""
    child.kill()
    child.wait(timeout=30)


def openai_config(run_dir: Path, source: Path, url: str, *, sample_size: int = 14, trainer: str = "",
                  key_env: str = "FAKE_KEY", extra: str = "") -> str:
    """A run on the fake OpenAI server: the "openai" trainer and chat models, key in $FAKE_KEY."""
    return config_head(run_dir, source, sample_size=sample_size, extra=extra) + f"""\
[trainer]
name = "openai"

[trainer.options]
base_url = "{url}"
api_key_env = "{key_env}"
poll_interval_min = 0.01
poll_interval_max = 0.05
max_retries = 0
{trainer}
[evaluation]
limit = 3
metrics = ["format", "rouge_l", "refusal"]

[evaluation.base_model]
name = "openai"
options = {{ model = "gpt-4o-mini", base_url = "{url}", api_key_env = "FAKE_KEY" }}

[evaluation.chat_options]
progress = false
concurrency = 1
max_retries = 0
"""


def fake_config(run_dir: Path, source: Path) -> str:
    """A run with the gated plugin's fake trainer and chat models (no torch, no server)."""
    return f"""\
run_dir = "{run_dir.as_posix()}"
seed = 5
formatter = "amazon-product"

[dataset]
source = "{source.as_posix()}"
sample_size = 14
test_size = 3

[prompts]
train = "amazon-product"
paraphrased = "amazon-product-paraphrased"

[trainer]
name = "gated"

[evaluation]
limit = 3
metrics = ["format", "rouge_l"]

[evaluation.base_model]
name = "gated"
"""


def files_text(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text (undecodable bytes replaced), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes().decode("utf-8", "replace")
            for p in sorted(root.rglob("*")) if p.is_file()}
