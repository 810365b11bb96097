"""Loading options shared by the local trainer and chat model: dtype, 4-bit, attention kernel,
gradient checkpointing with LoRA (run for real on a tiny random Llama)."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys

import pytest

from finetunekit.errors import ConfigError, FinetunekitError
from finetunekit.registry import get_chat_model, get_trainer
from local_fixtures import ITEM_EXAMPLES as EXAMPLES, tiny_model_for_module

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_model_for_module(tmp_path_factory)


def trainer(pm, tiny_model, **extra):
    options = dict(model=tiny_model, epochs=2, batch_size=2, learning_rate=2e-2, lora_r=4, lora_alpha=8,
                   device="cpu", logging_steps=1, max_length=64, warmup=0, bf16=False)
    return get_trainer("local", plugins=pm, **{**options, **extra})


def losses(tuned) -> list[float]:
    with open(tuned.metrics_path, newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_4bit_loading_off_cuda_is_a_clear_config_error(pm, tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="load_in_4bit needs a CUDA GPU.*device 'cpu'"):
        trainer(pm, tiny_model, load_in_4bit=True).train(EXAMPLES, run_dir=tmp_path / "run")
    chat = get_chat_model("local", plugins=pm, model=tiny_model, device="cpu", load_in_4bit=True)
    with pytest.raises(ConfigError, match="load_in_4bit needs a CUDA GPU"):
        chat.answer(["Tell me about item 1."])


@pytest.mark.parametrize("extra", [{"full_finetune": True}, {"merge": True}])
def test_4bit_weights_are_never_trained_or_merged_into(pm, tiny_model, extra):
    with pytest.raises(ConfigError, match="4-bit"):
        trainer(pm, tiny_model, load_in_4bit=True, **extra)


def test_dtype_and_attention_resolve_per_device():
    from finetunekit.backends.local.loading import cpu_has_bf16, resolve_attention, resolve_dtype

    assert resolve_dtype("auto", "cpu") == (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    assert resolve_dtype("float16", "cpu") == torch.float16
    assert resolve_attention("auto", "cpu", torch.float32) is None  # transformers' default: sdpa where supported
    assert resolve_attention("eager", "cpu", torch.float32) == "eager"
    with pytest.raises(FinetunekitError, match="flash"):  # not installed, or not on CUDA in 16 bits
        resolve_attention("flash_attention_2", "cpu", torch.float32)


def test_bfloat16_weights_train_float32_adapters(pm, tiny_model, tmp_path):
    t = trainer(pm, tiny_model, dtype="bfloat16")
    t.train(EXAMPLES, run_dir=tmp_path / "run")
    def kind(name: str) -> str:
        return next((part for part in ("lora_A", "lora_B") if part in name), "base")

    dtypes = {kind(name): p.dtype for name, p in t.trained_model.named_parameters() if "q_proj" in name}
    assert dtypes == {"base": torch.bfloat16, "lora_A": torch.float32, "lora_B": torch.float32}


def test_gradient_checkpointing_with_lora_trains_the_same_adapter(pm, tiny_model, tmp_path):
    plain = trainer(pm, tiny_model)
    tuned_plain = plain.train(EXAMPLES, run_dir=tmp_path / "plain")
    checkpointed = trainer(pm, tiny_model, gradient_checkpointing=True)
    tuned_checkpointed = checkpointed.train(EXAMPLES, run_dir=tmp_path / "checkpointed")
    assert losses(tuned_checkpointed) == pytest.approx(losses(tuned_plain), rel=1e-4)
    lora_b = {n: p for n, p in checkpointed.trained_model.named_parameters() if "lora_B" in n}
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b.values())  # gradients reached every adapter
    for name, p in plain.trained_model.named_parameters():
        if "lora_B" in name:
            assert torch.allclose(p, lora_b[name], atol=1e-5), name


def test_the_chat_model_loads_with_the_chosen_attention_kernel_and_dtype(pm, tiny_model):
    questions = ["Tell me about item 1.", "Tell me about item 22 please."]
    eager = get_chat_model("local", plugins=pm, model=tiny_model, device="cpu", attn_implementation="eager",
                           max_new_tokens=5, progress=False)
    default = get_chat_model("local", plugins=pm, model=tiny_model, device="cpu", max_new_tokens=5, progress=False)
    assert eager.answer(questions) == default.answer(questions)
    assert eager.loaded.model.config._attn_implementation == "eager"
    assert default.loaded.model.config._attn_implementation == "sdpa"
    half = get_chat_model("local", plugins=pm, model=tiny_model, device="cpu", dtype="bfloat16", progress=False)
    assert half.loaded.model.dtype == torch.bfloat16
    assert "attn_implementation" in eager.cache_identity() and "attn_implementation" not in default.cache_identity()


def test_a_run_recorded_before_the_loading_options_existed_is_still_reused(pm, tiny_model, tmp_path):
    run = tmp_path / "run"
    first = trainer(pm, tiny_model, epochs=1).train(EXAMPLES, run_dir=run)
    marker = run / "training.json"
    recorded = json.loads(marker.read_text())
    for name in ("dtype", "load_in_4bit", "attn_implementation"):
        del recorded["details"]["options"][name]
    marker.write_text(json.dumps(recorded))
    assert trainer(pm, tiny_model, epochs=1).train(EXAMPLES, run_dir=run).model == first.model
    with pytest.raises(ConfigError, match="other options"):
        trainer(pm, tiny_model, epochs=1, dtype="bfloat16").train(EXAMPLES, run_dir=run)


TRAIN_AND_REPORT_CACHE_VARIABLES = """
import json, os, sys, tempfile
from finetunekit.memory import PRIMITIVE_CACHES
from finetunekit.registry import get_trainer
names = [name for variables, _ in PRIMITIVE_CACHES.values() for name in variables]
before = {n: os.environ.get(n) for n in names}
trainer = get_trainer("local", model=sys.argv[1], epochs=1, batch_size=2, lora_r=4, lora_alpha=8, device="cpu",
                      max_length=64, bf16=False)
trainer.train(json.loads(sys.argv[2]), run_dir=tempfile.mkdtemp())
print(json.dumps([before, {n: os.environ.get(n) for n in names}]))
"""


@pytest.mark.parametrize("user_setting", [{}, {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "512"},
                                          {"DNNL_PRIMITIVE_CACHE_CAPACITY": "512"}, {"LRU_CACHE_CAPACITY": "512"}])
def test_training_on_a_cpu_caps_the_kernel_caches_unless_the_user_sized_them(tiny_model, user_setting):
    # in a fresh process each: oneDNN and ideep read their variable at their first computation
    from finetunekit.memory import PRIMITIVE_CACHES

    names = [name for variables, _ in PRIMITIVE_CACHES.values() for name in variables]
    env = {k: v for k, v in os.environ.items() if k not in names} | user_setting
    command = [sys.executable, "-c", TRAIN_AND_REPORT_CACHE_VARIABLES, tiny_model, json.dumps(EXAMPLES[:4])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = json.loads(done.stdout.splitlines()[-1])
    assert before == {name: user_setting.get(name) for name in names}
    expected = dict(before)
    for variables, capacity in PRIMITIVE_CACHES.values():  # a cache the user sized keeps its size
        if not any(before[name] for name in variables):
            expected[variables[0]] = str(capacity)
    assert after == expected
    assert all(any(after[name] for name in variables) for variables, _ in PRIMITIVE_CACHES.values())
    assert "oneDNN" in PRIMITIVE_CACHES and (platform.machine().lower() in ("aarch64", "arm64") or "ideep" in PRIMITIVE_CACHES)
