"""A pytest fixture for plugin authors: ``fake_openai``, a running :class:`FakeOpenAI`.

Use it from a ``conftest.py`` (``pytest_plugins = ["finetunekit.testing.pytest_plugin"]``)
or import the fixture into a test module (``from finetunekit.testing.pytest_plugin import
fake_openai``).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from finetunekit.testing.fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake OpenAI server for one test, stopped afterwards."""
    with FakeOpenAI() as fake:
        yield fake
