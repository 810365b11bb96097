"""Helpers of the pipeline and CLI tests: a tiny model, a small source file, a TOML config."""

from __future__ import annotations

from pathlib import Path

from synthetic_catalog import write_jsonl_gz
from local_fixtures import smollm2_tokenizer_dir, tiny_llama_dir


def make_tiny_model(root: Path) -> Path:
    """A tiny random Llama with the SmolLM2 tokenizer, saved under ``root``."""
    return tiny_llama_dir(smollm2_tokenizer_dir(root / "tokenizer"), root / "model", init_range=0.05)


def make_source(root: Path, rows: int = 60) -> Path:
    """A small AmazonTitles-schema gzip JSON Lines file."""
    path = root / "source.json.gz"
    write_jsonl_gz(path, rows, seed=3)
    return path


def config_head(run_dir: Path, source: Path, *, sample_size: int = 14, extra: str = "") -> str:
    """The run, dataset and prompts sections the test configs share (``extra``: more top-level keys)."""
    return f"""\
run_dir = "{run_dir.as_posix()}"
seed = 5
formatter = "amazon-product"
{extra}
[dataset]
source = "{source.as_posix()}"
sample_size = {sample_size}
test_size = 3

[dataset.clean]
min_content_length = 20

[prompts]
train = "amazon-product"
paraphrased = "amazon-product-paraphrased"

"""


def config_toml(run_dir: Path, model: Path, source: Path, *, epochs: int = 1, extra: str = "") -> str:
    """A pipeline config that trains and evaluates the tiny model in seconds."""
    return config_head(run_dir, source, extra=extra) + f"""\
[trainer]
name = "local"

[trainer.options]
model = "{model.as_posix()}"
epochs = {epochs}
batch_size = 4
max_length = 96
device = "cpu"
save_steps = 1
logging_steps = 1

[evaluation]
limit = 4
metrics = ["format", "rouge_l", "refusal"]

[evaluation.base_model]
name = "local"
options = {{ model = "{model.as_posix()}" }}

[evaluation.chat_options]
max_new_tokens = 6
device = "cpu"
"""
