"""Shared test setup: offline Hugging Face hub, a fresh plugin manager per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# scripts/ holds the generator of the shipped sample (tooling, not product code)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from finetunekit.plugins import create_plugin_manager  # noqa: E402


@pytest.fixture
def pm():
    """A fresh plugin manager (built-ins only, no installed entry points) for one test."""
    return create_plugin_manager(load_entrypoints=False)


def pytest_collection_modifyitems(config, items):
    """Skip the ``gpu``-marked tests where torch sees no CUDA device (CI has none)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if not cuda:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (run benchmarks/gpu_check.py on a GPU machine)"))
