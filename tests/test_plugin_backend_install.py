"""An out-of-tree backend plugin, built and pip-installed, runs a whole pipeline without torch.

The plugin package is written to a temporary folder and installed with ``pip install
--target`` (as in ``test_plugin_install.py``). Its module registers a trainer, a chat model
(with no ``model`` option), a model source, template sets and a formatter. Each pipeline run
happens in a fresh interpreter that finds the plugin through its entry point only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_plugin_install import SRC, _run

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-backend"
version = "0.1.0"

[project.entry-points.finetunekit]
acme = "acme_backend"

[tool.setuptools]
py-modules = ["acme_backend"]
"""

PLUGIN = '''\
"""Acme's finetunekit backend: a look-up-table trainer and chat model, and a model source."""
import json
from pathlib import Path

import finetunekit
from finetunekit import ChatModel, ModelSource, option
from finetunekit.testing.fake_backend import FakeTrainer

#: Conversations this process asked the chat model to answer.
ANSWERED = []


class AcmeTrainer(FakeTrainer):
    name = "acme"
    chat_backend = "acme-chat"


class AcmeChat(ChatModel):
    """Answers from a table; its options have no ``model``."""

    name = "acme-chat"

    class Options(ChatModel.Options):
        table: str | None = option(None, description="lookup table; unset: a base model")
        request_timeout: float = option(10.0, affects_result=False, description="unused")

    def generate(self, conversations):
        ANSWERED.extend(conversations)
        table = json.loads(Path(self.options.table).read_text()) if self.options.table else {}
        return [table.get(messages[-1]["content"], "Acme does not know.") for messages in conversations]


class AcmeWeights(ModelSource):
    name = "acme-weights"
    description = "a folder with a marker file"

    def resolve(self, cache_dir=None):
        folder = Path(cache_dir or Path.cwd() / "acme-cache") / self.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "weights.txt").write_text("acme")
        return folder


@finetunekit.hookimpl
def register_trainers(register):
    register(AcmeTrainer)


@finetunekit.hookimpl
def register_chat_models(register):
    register(AcmeChat)


@finetunekit.hookimpl
def register_model_sources(register):
    register(AcmeWeights())


@finetunekit.hookimpl
def register_prompt_templates(register):
    register(finetunekit.PromptTemplateSet(name="acme-questions",
                                           templates=["What is {title}?", "Tell me about {title}."]))
    register(finetunekit.PromptTemplateSet(name="acme-paraphrased", templates=["Explain {title}."]))


@finetunekit.hookimpl
def register_response_formatters(register):
    register(finetunekit.ResponseFormatter("Acme says {title}: {content}", name="acme-answer"))
'''

CONFIG = """\
run_dir = "run"
seed = 11
formatter = "acme-answer"

[dataset]
source = "catalog.jsonl"
test_size = 6

[prompts]
train = "acme-questions"
paraphrased = "acme-paraphrased"

[trainer]
name = "acme"
options = {{ base_model = "acme-weights", steps = {steps}, request_timeout = {timeout} }}

[evaluation]
metrics = ["exact_match", "format", "refusal"]
base_model = {{ name = "acme-chat" }}
"""

RUN = """
import json, sys
from pathlib import Path
from finetunekit import Pipeline
from finetunekit.testing.fake_backend import training_counts
import acme_backend

summary = Path("run/report/summary.csv")
before = summary.stat().st_mtime_ns if summary.exists() else None
try:
    report = Pipeline.from_config("config.toml").run()
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    raise SystemExit(0)
tuned = json.loads(Path("run/train/fine_tuned_model.json").read_text())
figures = {f"{r.split}/{r.metric}/{r.model}": r.value for r in report.summary.itertuples()}
print(json.dumps({
    "figures": figures,
    "counts": training_counts("run/train"),
    "answered": len(acme_backend.ANSWERED),
    "tuned": tuned,
    "summary_rewritten": before != summary.stat().st_mtime_ns,
    "heavy_modules": sorted(m for m in ("torch", "transformers") if m in sys.modules),
}))
"""


def _rows() -> list[dict[str, str]]:
    return [{"title": f"Widget {i}", "content": f"Widget {i} clamps pipes of {10 + i} mm."} for i in range(30)]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A working folder holding the installed plugin (``site/``) and a source file."""
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("acme")
    package = tmp / "acme-backend"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "acme_backend.py").write_text(PLUGIN)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--target", str(tmp / "site"), str(package)],
        capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0 and "No module named" in result.stderr and "setuptools" in result.stderr:
        pytest.skip("setuptools is not installed (pip install 'finetunekit[test]')")
    assert result.returncode == 0, result.stdout + result.stderr
    work = tmp / "work"
    work.mkdir()
    (work / "catalog.jsonl").write_text("".join(json.dumps(row) + "\n" for row in _rows()))
    return tmp


def _pipeline(project: Path, *, steps: int = 3, timeout: float = 10.0) -> dict:
    work = project / "work"
    (work / "config.toml").write_text(CONFIG.format(steps=steps, timeout=timeout))
    return _run(RUN, work, project / "site", SRC)


def test_installed_backend_plugin_runs_and_resumes_without_torch(project):
    first = _pipeline(project, timeout=10.0)
    assert "error" not in first, first
    assert first["counts"] == {"trained": 1, "resumed": 0}
    assert first["heavy_modules"] == []
    tuned = first["tuned"]
    # the plugin chat model (no `model` option) serves the fine-tuned model, from the table
    assert tuned["backend"] == "acme-chat" and tuned["chat_options"] == {"table": tuned["model"]}
    assert tuned["details"]["seed"] == 11  # option(pipeline="seed") was filled from the config
    assert Path(tuned["details"]["base_model_dir"]).name == "acme-weights"  # the plugin's source
    assert (Path(tuned["details"]["base_model_dir"]) / "weights.txt").is_file()
    figures = first["figures"]
    assert figures["train-questions/exact_match/fine-tuned"] == 1.0
    assert figures["train-questions/exact_match/base"] == 0.0
    assert figures["unseen-products/exact_match/fine-tuned"] == 0.0  # never trained on
    assert figures["train-questions/format/fine-tuned"] == 1.0  # the plugin formatter's prefix
    assert first["answered"] > 0 and first["summary_rewritten"]

    # a non-result option (request_timeout) changed: everything is resumed, nothing redone
    second = _pipeline(project, timeout=99.0)
    assert "error" not in second, second
    assert second["counts"] == {"trained": 1, "resumed": 0}
    assert second["answered"] == 0  # the report was loaded, no model was asked anything
    assert not second["summary_rewritten"]
    assert second["figures"] == figures
    assert second["tuned"] == tuned
    assert second["heavy_modules"] == []

    # a result-changing option (steps) changed: the finished run is not silently reused or redone
    third = _pipeline(project, steps=4, timeout=99.0)
    assert third["error"] == "ConfigError" and "different config" in third["message"]
