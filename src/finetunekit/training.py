"""The Trainer interface and the FineTunedModel it returns."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pluggy
from pydantic import BaseModel, ConfigDict, Field

from finetunekit.component import Component

if TYPE_CHECKING:
    from finetunekit.examples.example_set import ExampleSet
    from finetunekit.examples.validation import ValidationReport
    from finetunekit.chat import ChatModel


class FineTunedModel(BaseModel):
    """What a training run produced, and how to talk to it."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(description="Name of the chat-model backend that serves this model.")
    base_model: str = Field(description="The model that was fine-tuned.")
    model: str = Field(description="Fine-tuned model id, or the local adapter/model directory.")
    metrics_path: str | None = Field(default=None, description="Training metrics CSV, if any.")
    chat_options: dict[str, Any] = Field(
        default_factory=dict, description="Options the backend's chat model needs for this model."
    )
    details: dict[str, Any] = Field(
        default_factory=dict, description="Backend facts: trained tokens, hyperparameters, checkpoints…"
    )

    def chat_model(self, *, plugins: pluggy.PluginManager | None = None, **options: Any) -> ChatModel:
        """A chat model answering with the fine-tuned model (``options`` override the defaults)."""
        from finetunekit.registry import get_chat_model

        return get_chat_model(self.backend, plugins=plugins, **{**self.chat_options, **options})


class Trainer(Component, abc.ABC):
    """A fine-tuning backend. Subclasses set ``name`` and ``Options`` and implement ``train``."""

    #: The chat-model backend that serves what this trainer produces (default: its own ``name``).
    chat_backend: ClassVar[str | None] = None

    @abc.abstractmethod
    def train(
        self,
        examples: ExampleSet,
        validation: ExampleSet | None = None,
        *,
        run_dir: str | Path,
    ) -> FineTunedModel:
        """Fine-tune on ``examples`` (optionally checking ``validation``), writing into ``run_dir``.

        Rerunning with the same ``run_dir`` resumes or reattaches rather than starting over.
        """

    def check(self, examples: ExampleSet) -> ValidationReport:
        """This backend's checks of ``examples`` before any training: by default the examples'
        own structural checks and token statistics. A backend with further rules (the OpenAI
        one: at least 10 examples) overrides this; the pipeline refuses to train on errors."""
        return examples.validate(model=getattr(self.options, "model", None))

    def dry_run(self, examples: ExampleSet, validation: ExampleSet | None = None, *, run_dir: str | Path) -> Any:
        """What training would do, without training or sending anything: by default
        :meth:`check`'s report (token statistics, epochs, billed-token estimate).

        Backends that can say more (the OpenAI one estimates the cost) override this.
        """
        return self.check(examples)

    def stop_unfinished(self, run_dir: str | Path) -> str | None:
        """Make sure nothing started by an earlier run into ``run_dir`` still runs, before the
        pipeline deletes that work (``--fresh``, or a failed training stage retried with other
        settings). Returns a line saying what was stopped, or ``None``.

        The default does nothing: a run on this machine stops with its process, and the run
        directory's lock proves no process works in it. A hosted backend cancels its job (the
        OpenAI one: a job that is not terminal) or raises when it cannot.
        """
        return None
