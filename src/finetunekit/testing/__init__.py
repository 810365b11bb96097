"""Helpers for testing finetunekit and its plugins without a network or a paid account.

- :class:`FakeOpenAI`: a stateful fake of the OpenAI API (files, fine-tuning jobs, chat
  completions, batches) served over HTTP on 127.0.0.1, with fault scripting and a request log.
- :class:`JobPlan`: how a fake fine-tuning job moves through its statuses; :class:`BatchPlan`
  and :class:`LineFailure` the same for a fake batch and its failing lines.
- :func:`fresh_plugin_manager`: a plugin manager with the built-ins only (no installed plugins).
- :mod:`finetunekit.testing.fake_backend`: a torch-free fake trainer, chat model and model
  source (all named ``fake``/``fake-source``); ``pm.register(fake_backend)`` adds them.
- ``finetunekit.testing.pytest_plugin``: the ``fake_openai`` pytest fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetunekit.testing import fake_backend
from finetunekit.testing.fake_backend import FakeChatModel, FakeModelSource, FakeTrainer
from finetunekit.testing.fake_batches import BatchPlan, LineFailure
from finetunekit.testing.fake_faults import ROUTES, FaultRule, LoggedRequest
from finetunekit.testing.fake_jobs import JobPlan
from finetunekit.testing.fake_openai import DEFAULT_API_KEY, FakeOpenAI

if TYPE_CHECKING:
    import pluggy

__all__ = ["DEFAULT_API_KEY", "ROUTES", "BatchPlan", "FakeChatModel", "FakeModelSource", "FakeOpenAI", "FakeTrainer",
           "FaultRule", "JobPlan", "LineFailure", "LoggedRequest", "fake_backend", "fresh_plugin_manager"]


def fresh_plugin_manager() -> pluggy.PluginManager:
    """A new plugin manager holding only finetunekit's built-in plugins."""
    from finetunekit.plugins import create_plugin_manager

    return create_plugin_manager(load_entrypoints=False)
