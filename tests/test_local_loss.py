"""The chunked loss equals transformers' own causal-LM loss, in value and in gradients."""

from __future__ import annotations

import pytest

from local_fixtures import smollm2_tokenizer_dir, tiny_llama_dir

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from finetunekit.backends.local.loss import (  # noqa: E402
    IGNORE_INDEX,
    chunked_causal_lm_loss,
    linear_cross_entropy,
    supports_chunked_loss,
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    tok = smollm2_tokenizer_dir(tmp_path_factory.mktemp("tok"))
    return str(tiny_llama_dir(tok, tmp_path_factory.mktemp("tiny")))


def load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def batch(vocab: int, *, rows: int = 3, width: int = 24, seed: int = 0):
    """Random ids, labels on a random tail of each row (prompt unlabelled), right padding."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (rows, width), generator=generator)
    labels = torch.full_like(ids, IGNORE_INDEX)
    mask = torch.zeros_like(ids)
    for row in range(rows):
        length = width - 5 * row
        prompt = 3 + row
        mask[row, :length] = 1
        labels[row, prompt:length] = ids[row, prompt:length]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_linear_cross_entropy_equals_plain_cross_entropy_and_its_gradients(chunk):
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 9, 16, generator=generator, requires_grad=True)
    weight = torch.randn(50, 16, generator=generator, requires_grad=True)
    bias = torch.randn(50, generator=generator, requires_grad=True)
    targets = torch.randint(0, 50, (2, 9), generator=generator)
    targets[0, :4] = IGNORE_INDEX
    plain = torch.nn.functional.cross_entropy((hidden @ weight.T + bias).reshape(-1, 50), targets.reshape(-1), reduction="sum") / 11
    plain.backward()
    expected = [t.grad.clone() for t in (hidden, weight, bias)]
    for t in (hidden, weight, bias):
        t.grad = None
    ours = linear_cross_entropy(hidden, weight, targets, bias=bias, num_items=11, chunk=chunk)
    (ours * 1.0).backward()
    assert torch.allclose(ours, plain, atol=1e-5)
    for got, want in zip((hidden.grad, weight.grad, bias.grad), expected):
        assert torch.allclose(got, want, atol=1e-5)


def test_no_labelled_position_gives_a_zero_loss_that_still_backpropagates():
    hidden = torch.randn(1, 4, 8, requires_grad=True)
    weight = torch.randn(10, 8)
    loss = linear_cross_entropy(hidden, weight, torch.full((1, 4), IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(hidden.grad) == 0


@pytest.mark.parametrize("num_items", [None, 40])
def test_chunked_model_loss_equals_the_models_own_loss_and_gradients(tiny_model_dir, num_items):
    model = load(tiny_model_dir)
    assert supports_chunked_loss(model)
    inputs = batch(model.config.vocab_size)
    kwargs = {"num_items_in_batch": torch.tensor(num_items)} if num_items else {}
    plain = model(**inputs, **kwargs).loss
    plain.backward()
    expected = grads(model)
    model.zero_grad(set_to_none=True)
    ours, outputs = chunked_causal_lm_loss(model, inputs, torch.tensor(num_items) if num_items else None, chunk=5)
    ours.backward()
    assert outputs.logits.shape[1] == 1  # the batch's logits never materialised
    assert torch.allclose(ours, plain, rtol=1e-5, atol=1e-6)
    got = grads(model)
    assert got.keys() == expected.keys()
    assert "lm_head.weight" in got or "model.embed_tokens.weight" in got  # the (tied) output weight is trained
    for name, want in expected.items():
        # summation order differs (chunks, threads): tolerate float noise relative to the gradient's scale
        scale = want.abs().max().item()
        assert torch.allclose(got[name], want, rtol=1e-4, atol=1e-4 * scale), name


def test_chunked_loss_under_bf16_autocast_matches_the_plain_loss(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(load(tiny_model_dir), LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False))
    inputs = batch(model.config.vocab_size, seed=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model(**inputs).loss
    plain.backward()
    expected = grads(model)
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, _ = chunked_causal_lm_loss(model, inputs, chunk=8)
    ours.backward()
    assert torch.allclose(ours, plain, rtol=2e-3)
    got = grads(model)
    assert got.keys() == expected.keys() and all("lora" in name for name in got)
    for name, want in expected.items():
        assert torch.allclose(got[name], want, rtol=0.05, atol=2e-3 * want.abs().max().item()), name
