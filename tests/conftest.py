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
