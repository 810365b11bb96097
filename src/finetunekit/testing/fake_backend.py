"""A torch-free fake fine-tuning backend: trainer ``fake``, chat model ``fake``, model source ``fake-source``.

For plugin authors and tests that need a whole pipeline run in a second: the trainer "learns"
the examples by writing a question -> answer lookup table into the run directory, and the chat
model answers from that table. Register it on a plugin manager with::

    import finetunekit.testing.fake_backend
    pm.register(finetunekit.testing.fake_backend)

and configure a run with ``trainer.name = "fake"`` and ``evaluation.base_model.name = "fake"``.
Nothing here imports torch or transformers.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from finetunekit.atomic import write_json, write_text
from finetunekit.backends.local.sources import ModelSource, models_cache_dir
from finetunekit.chat import ChatModel, Message
from finetunekit.component import ComponentOptions, option
from finetunekit.hookspecs import hookimpl
from finetunekit.training import FineTunedModel, Trainer

#: Files the fake trainer writes into its run directory.
TABLE_FILE = "lookup_table.json"
METRICS_FILE = "metrics.csv"
RESULT_FILE = "fake_model.json"
COUNTS_FILE = "fake_trainer_counts.json"

#: What the fake chat model says to a question that is not in its table.
UNKNOWN_ANSWER = "I don't know anything about that."


def training_counts(run_dir: str | Path) -> dict[str, int]:
    """How often the fake trainer trained (``trained``) and resumed (``resumed``) in ``run_dir``."""
    path = Path(run_dir) / COUNTS_FILE
    counts = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {"trained": counts.get("trained", 0), "resumed": counts.get("resumed", 0)}


def _count(run_dir: Path, what: str) -> None:
    counts = training_counts(run_dir)
    counts[what] += 1
    write_json(run_dir / COUNTS_FILE, counts)


def _last_content(messages: list[Message], role: str) -> str:
    for message in reversed(messages):
        if message.get("role") == role:
            return str(message.get("content", ""))
    return ""


class FakeTrainer(Trainer):
    """Learns examples by heart: writes ``lookup_table.json`` (last user message -> last
    assistant message) and a decreasing loss curve ``metrics.csv`` (``step``, ``loss``).

    A rerun into a run directory that holds a finished result returns it without training
    again; :func:`training_counts` tells the two apart.
    """

    name = "fake"

    class Options(ComponentOptions):
        """What the fake trainer takes."""

        base_model: str = option(
            "fake-source",
            description="The model said to be fine-tuned: a registered model source (resolved, its directory "
            "recorded in details) or any label.",
        )
        steps: int = option(5, ge=1, description="Training steps logged to metrics.csv.")
        seed: int | None = option(None, pipeline="seed", description="Seed (recorded; the fake is deterministic).")
        request_timeout: float = option(
            30.0, gt=0, affects_result=False, description="Seconds a real backend would wait per request (unused)."
        )
        progress: bool = option(False, affects_result=False, description="Show progress (unused).")

    def train(self, examples: Any, validation: Any = None, *, run_dir: str | Path) -> FineTunedModel:
        """Write the lookup table and loss curve into ``run_dir``; return the fine-tuned model.

        ``validation`` (an ExampleSet) is only counted, into ``details``. The paths in the result
        are absolute, so the model can be used from any working directory.
        """
        run_dir = Path(run_dir).resolve()
        result = run_dir / RESULT_FILE
        if result.is_file():
            _count(run_dir, "resumed")
            return FineTunedModel.model_validate_json(result.read_text(encoding="utf-8"))
        table = dict(zip(examples.user_questions(), examples.assistant_answers()))
        table_path = run_dir / TABLE_FILE
        write_json(table_path, table)
        steps = self.options.steps
        rows = [f"{step},{2.0 * 0.6 ** (step - 1):.6f}" for step in range(1, steps + 1)]
        metrics_path = run_dir / METRICS_FILE
        write_text(metrics_path, "step,loss\n" + "\n".join(rows) + "\n")
        tuned = FineTunedModel(
            backend=self.chat_backend or self.name,
            base_model=self.options.base_model,
            model=str(table_path),
            metrics_path=str(metrics_path),
            chat_options={"table": str(table_path)},
            details={"examples": len(examples), "questions": len(table), "steps": steps,
                     "seed": self.options.seed,
                     "validation_examples": len(validation) if validation is not None else 0},
        )
        source_dir = self._base_model_dir()
        if source_dir is not None:
            tuned.details["base_model_dir"] = source_dir
        _count(run_dir, "trained")
        write_json(result, tuned.model_dump(mode="json"))  # written last: its presence means "complete"
        return tuned

    def _base_model_dir(self) -> str | None:
        """The resolved directory of ``base_model`` when it names a registered model source."""
        from finetunekit.registry import registry_for

        sources = registry_for("register_model_sources", self.plugins)
        name = self.options.base_model
        return str(sources.get(name).resolve()) if name in sources else None


class FakeChatModel(ChatModel):
    """Answers from a fake trainer's lookup table (the last user message, matched exactly).

    Without a table (a base model), or for a question not in it, it answers
    :data:`UNKNOWN_ANSWER`, or echoes the question with ``echo_unknown=True``.
    """

    name = "fake"

    class Options(ChatModel.Options):
        """The table to answer from, and what to say otherwise."""

        table: str | None = option(
            None, description="A lookup_table.json written by the fake trainer; unset: a base model."
        )
        echo_unknown: bool = option(False, description="Answer an unknown question with the question itself.")
        request_timeout: float = option(
            30.0, gt=0, affects_result=False, description="Seconds a real backend would wait per request (unused)."
        )

    def _table(self) -> dict[str, str]:
        table = self.options.table
        return json.loads(Path(table).read_text(encoding="utf-8")) if table else {}

    def generate(self, conversations: list[list[Message]]) -> list[str]:
        """The table's answer to each conversation's last user message."""
        return [text for text, _ in self.generate_scored(conversations)]

    def generate_scored(self, conversations: list[list[Message]]) -> list[tuple[str, float | None]]:
        """Each answer with a confidence: the word overlap (Jaccard) of the question with the
        closest question in the table, minus 1 — 0.0 for a trained question, lower the less of
        it was seen (a new wording of a known product keeps its title's words)."""
        table = self._table()
        known = [set(question.lower().split()) for question in table]
        answers = []
        for messages in conversations:
            question = _last_content(messages, "user")
            fallback = question if self.options.echo_unknown else UNKNOWN_ANSWER
            words = set(question.lower().split())
            overlap = max((len(words & k) / len(words | k) for k in known), default=0.0)
            answers.append((table.get(question, fallback), overlap - 1.0))
        return answers

    def cache_identity(self) -> dict[str, Any]:
        """The result-changing options plus a hash of the table's contents (a retrained table
        at the same path must not be answered from the cache)."""
        identity = super().cache_identity()
        table = self.options.table
        if table and Path(table).is_file():
            identity["table_sha256"] = hashlib.sha256(Path(table).read_bytes()).hexdigest()
        return identity

    @property
    def model_label(self) -> str:
        """``fake`` for a base model, ``fake:<run dir name>`` for a trained table."""
        table = self.options.table
        return f"{self.name}:{Path(table).parent.name}" if table else self.name


class FakeModelSource(ModelSource):
    """A model source whose :meth:`resolve` gives a directory holding a tiny ``config.json``.

    With ``cache_dir`` the directory is ``<cache_dir>/fake-source``; without, a temporary
    directory made once per source object and removed when the object goes (at the latest
    when the interpreter exits).
    """

    name = "fake-source"
    description = "A fake model directory for tests (no weights)."

    def __init__(self) -> None:
        self._temp: tempfile.TemporaryDirectory[str] | None = None

    def resolve(self, cache_dir: str | Path | None = None) -> Path:
        """The fake model directory (created on first use)."""
        if cache_dir is not None:
            target = models_cache_dir(cache_dir) / self.name
        else:
            if self._temp is None:
                self._temp = tempfile.TemporaryDirectory(prefix="finetunekit-fake-source-")
            target = Path(self._temp.name)
        config = target / "config.json"
        if not config.is_file():
            write_json(config, {"model_type": "fake", "name": self.name})
        return target


FAKE_SOURCE = FakeModelSource()


@hookimpl
def register_trainers(register: Any) -> None:
    """The ``fake`` trainer."""
    register(FakeTrainer)


@hookimpl
def register_chat_models(register: Any) -> None:
    """The ``fake`` chat model."""
    register(FakeChatModel)


@hookimpl
def register_model_sources(register: Any) -> None:
    """The ``fake-source`` model source."""
    register(FAKE_SOURCE)


__all__ = ["FAKE_SOURCE", "FakeChatModel", "FakeModelSource", "FakeTrainer", "UNKNOWN_ANSWER", "training_counts"]
