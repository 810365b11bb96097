"""The CUDA path, run by benchmarks/gpu_check.py on a GPU machine (skipped without CUDA): bf16
weights, QLoRA through bitsandbytes, flash-attention, batched generation on the GPU."""

from __future__ import annotations

import csv

import pytest

from finetunekit.registry import get_chat_model, get_trainer
from local_fixtures import smollm2_tokenizer_dir, tiny_llama_dir

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")
pytest.importorskip("peft")

EXAMPLES = [
    {"messages": [{"role": "user", "content": f"Tell me about item {i}."},
                  {"role": "assistant", "content": f"Item {i} is a {colour} kettle from the catalogue."}]}
    for i, colour in enumerate(["blue", "red", "green", "black", "white", "grey"])
]
QUESTIONS = [e["messages"][0]["content"] for e in EXAMPLES]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    tok = smollm2_tokenizer_dir(tmp_path_factory.mktemp("tok"))
    return str(tiny_llama_dir(tok, tmp_path_factory.mktemp("tiny"), hidden=128))


def train(pm, tiny_model, run_dir, **extra):
    options = dict(model=tiny_model, epochs=8, batch_size=3, learning_rate=1e-2, lora_r=8, lora_alpha=16,
                   device="cuda", logging_steps=1, max_length=64, warmup=0, dtype="auto", **extra)
    trainer = get_trainer("local", plugins=pm, **options)
    return trainer, trainer.train(EXAMPLES, run_dir=run_dir)


def losses(tuned) -> list[float]:
    with open(tuned.metrics_path, newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_lora_trains_on_cuda_in_bfloat16(pm, tiny_model, tmp_path):
    trainer, tuned = train(pm, tiny_model, tmp_path / "run")
    curve = losses(tuned)
    assert tuned.details["device"] == "cuda" and tuned.details["bf16"] is torch.cuda.is_bf16_supported()
    assert sum(curve[-2:]) < 0.7 * sum(curve[:2])
    base = next(p for n, p in trainer.trained_model.named_parameters() if "q_proj.base_layer" in n)
    assert base.device.type == "cuda"
    assert base.dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)


def test_qlora_trains_adapters_on_4bit_weights_and_answers_with_them(pm, tiny_model, tmp_path):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    trainer, tuned = train(pm, tiny_model, tmp_path / "run", load_in_4bit=True, gradient_checkpointing=True)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in trainer.trained_model.modules())
    curve = losses(tuned)
    assert sum(curve[-2:]) < sum(curve[:2])
    chat = tuned.chat_model(plugins=pm, device="cuda", load_in_4bit=True, max_new_tokens=8, progress=False)
    answers = chat.answer(QUESTIONS)
    assert len(answers) == len(QUESTIONS)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in chat.loaded.model.modules())


def test_batched_generation_on_cuda_keeps_the_callers_order(pm, tiny_model):
    options = dict(model=tiny_model, device="cuda", dtype="float32", max_new_tokens=8, progress=False)
    batched = get_chat_model("local", plugins=pm, batch_size=4, **options).answer(QUESTIONS)
    alone = get_chat_model("local", plugins=pm, batch_size=1, **options).answer(QUESTIONS)
    assert batched == alone


def test_flash_attention_is_chosen_when_installed(pm, tiny_model):
    pytest.importorskip("flash_attn")
    chat = get_chat_model("local", plugins=pm, model=tiny_model, device="cuda", dtype="bfloat16",
                          max_new_tokens=4, progress=False)
    assert len(chat.answer(QUESTIONS)) == len(QUESTIONS)
    assert chat.loaded.model.config._attn_implementation == "flash_attention_2"
