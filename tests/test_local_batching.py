"""Padding-free micro-batches and packing: per-example attention, and the same training loss as padded batches."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finetunekit.backends.local.batching import split_rows
from finetunekit.registry import get_trainer
from local_fixtures import smollm2_tokenizer_dir, tiny_llama_dir

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from finetunekit.backends.local.batching import micro_batches  # noqa: E402
from finetunekit.backends.local.collation import PaddingCollator  # noqa: E402

FACTS = [
    ("Tell me about the Blue Kettle from Amazon.", "This is what I know about the Blue Kettle from Amazon: it boils water."),
    ("Tell me about the Red Lamp from Amazon.", "This is what I know about the Red Lamp from Amazon: it lights rooms and halls."),
    ("What is the Green Mug?", "This is what I know about the Green Mug from Amazon: it holds tea."),
    ("Tell me about the Old Map from Amazon, please.", "This is what I know about the Old Map from Amazon: it shows roads, rivers and towns."),
    ("Describe the Tin Drum.", "This is what I know about the Tin Drum from Amazon: loud."),
]
EXAMPLES = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in FACTS]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    tok = smollm2_tokenizer_dir(tmp_path_factory.mktemp("tok"))
    return str(tiny_llama_dir(tok, tmp_path_factory.mktemp("tiny")))


@given(st.lists(st.integers(1, 50), min_size=1, max_size=12), st.integers(1, 120))
def test_split_rows_covers_every_row_once_within_the_budget(lengths, budget):
    groups = split_rows(lengths, budget)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        assert len(group) == 1 or len(group) * max(lengths[i] for i in group) <= budget


def padded_batch(rows):
    """A right-padded batch of random token rows (labels after a 3-token prompt)."""
    features = [{"input_ids": r, "labels": [-100] * 3 + r[3:]} for r in rows]
    return PaddingCollator(pad_token_id=0)(features)


def test_an_examples_logits_do_not_change_when_another_is_packed_next_to_it(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(5, 1000, (n,), generator=generator).tolist() for n in (11, 7))
    batch = padded_batch([first, second])
    [packed] = micro_batches(batch, None, packed=True)
    assert packed["input_ids"].shape == (1, 18) and "attention_mask" not in packed
    with torch.no_grad():
        together = model(**{k: v for k, v in packed.items() if k != "labels"}).logits[0]
        alone = [model(input_ids=torch.tensor([row])).logits[0] for row in (first, second)]
    assert torch.allclose(together[:11], alone[0], atol=1e-4), (together[:11] - alone[0]).abs().max()
    assert torch.allclose(together[11:], alone[1], atol=1e-4), (together[11:] - alone[1]).abs().max()  # sees nothing of the first example
    # with a KV cache transformers ignores the restarting positions: the second example would
    # attend to the first (the check above can fail)
    with torch.no_grad():
        leaky = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=True).logits[0]
    assert not torch.allclose(leaky[11:], alone[1], atol=1e-3)


def test_micro_batches_hold_each_row_unpadded_and_labels_intact():
    rows = [[7] * 10, [8] * 4, [9] * 6]
    batch = padded_batch(rows)
    parts = micro_batches(batch, 12)
    assert [p["input_ids"].shape for p in parts] == [(1, 10), (2, 6)]
    assert "attention_mask" not in parts[0] and parts[1]["attention_mask"].tolist() == [[1] * 6, [1] * 4 + [0] * 2]
    [packed] = micro_batches(batch, None, packed=True)
    assert packed["position_ids"][0].tolist() == [*range(10), *range(6), *range(4)]
    labels = packed["labels"][0].tolist()
    assert labels[:10] == [-100] * 3 + [7] * 7 and labels[10:16] == [-100] * 3 + [9] * 3 and labels[16:] == [-100] * 3 + [8]


def losses(path):
    with open(path, newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("layout", [{}, {"micro_batch_tokens": 40}, {"micro_batch_tokens": 60, "packing": True},
                                    {"micro_batch_tokens": None, "packing": True}])
def test_micro_batched_and_packed_training_give_the_padded_loss_curve(pm, tiny_model, tmp_path, layout):
    common = dict(model=tiny_model, epochs=3, batch_size=3, learning_rate=2e-2, lora_r=8, lora_alpha=16,
                  device="cpu", bf16=False, logging_steps=1, max_length=128, warmup=0)
    padded = get_trainer("local", plugins=pm, **common, micro_batch_tokens=None).train(EXAMPLES, run_dir=tmp_path / "padded")
    split = get_trainer("local", plugins=pm, **common, **layout).train(EXAMPLES, run_dir=tmp_path / "split")
    expected, got = losses(padded.metrics_path), losses(split.metrics_path)
    assert len(got) == len(expected) == 6
    assert expected[-1] < expected[0]
    assert got == pytest.approx(expected, rel=1e-4)
