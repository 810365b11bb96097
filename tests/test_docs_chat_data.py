"""The configs and record shapes in docs/chat-data.md are what the code accepts."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from finetunekit.config import parse_config
from finetunekit.examples.chat_formats import chat_example

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOC = (Path(__file__).resolve().parents[1] / "docs" / "chat-data.md").read_text(encoding="utf-8")


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.DOTALL)


def test_the_pages_configs_are_valid_and_their_components_exist(pm):
    whole, fragment = blocks("toml")
    config = parse_config(tomllib.loads(whole), source="docs/chat-data.md")
    config.check_components(pm)
    assert config.dataset.chat_format == "sharegpt" and config.trainer.options["early_stopping_patience"] == 1
    dataset = tomllib.loads(fragment)["dataset"]
    assert parse_config({"dataset": dataset}).dataset.loader_options == {"split": "train"}


def test_the_record_shown_for_each_format_converts_to_a_valid_example():
    rows = re.findall(r"^\| `(messages|sharegpt|alpaca)` \| `(\{.*?\})` ", DOC, re.MULTILINE)
    assert [name for name, _ in rows] == ["messages", "sharegpt", "alpaca"]
    for name, record in rows:
        example = chat_example(json.loads(record), name)
        assert [m["role"] for m in example["messages"]][-2:] == ["user", "assistant"]
