"""Full fine-tuning of the top decoder layers only (``trained_layers``), run for real on a tiny Llama."""

from __future__ import annotations

import os
import sys

import pytest

from finetunekit.errors import ConfigError
from finetunekit.registry import get_trainer
from local_fixtures import ITEM_EXAMPLES as EXAMPLES, fast_training_options, read_csv, resident_pages, tiny_model_for_module

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

#: Whether this machine lets memory-mapped pages be told apart and dropped (Linux's /proc/self/pagemap).
DROPS_PAGES = sys.platform.startswith("linux") and os.access("/proc/self/pagemap", os.R_OK)


@pytest.fixture(scope="module")
def three_layer_model(tmp_path_factory):
    return tiny_model_for_module(tmp_path_factory, layers=3)


def weights(directory) -> dict[str, torch.Tensor]:
    model = transformers.AutoModelForCausalLM.from_pretrained(directory)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_only_the_top_layers_and_final_norm_change_and_the_loss_falls(pm, three_layer_model, tmp_path):
    trainer = get_trainer("local", plugins=pm, **fast_training_options(
        three_layer_model, full_finetune=True, trained_layers=2, epochs=8, learning_rate=1e-2))
    tuned = trainer.train(EXAMPLES, run_dir=tmp_path / "run")
    before, after = weights(three_layer_model), weights(tuned.chat_options["model"])
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed, "nothing was trained"
    for name in before:
        frozen = name.startswith(("model.embed_tokens", "model.layers.0.")) or name == "lm_head.weight"
        assert (name not in changed) == frozen, name
    assert any(name.startswith("model.layers.1.") for name in changed)
    assert any(name.startswith("model.layers.2.") for name in changed)
    assert "model.norm.weight" in changed
    losses = [float(row["loss"]) for row in read_csv(tuned.metrics_path)]
    assert losses[-1] < losses[0]


def test_trained_layers_needs_full_finetuning():
    with pytest.raises(ConfigError, match="set full_finetune = true"):
        get_trainer("local", trained_layers=1)


def test_more_trained_layers_than_the_model_has_is_an_error_naming_the_count(pm, three_layer_model, tmp_path):
    trainer = get_trainer("local", plugins=pm, **fast_training_options(three_layer_model, full_finetune=True, trained_layers=4))
    with pytest.raises(ConfigError, match="3 decoder layers"):
        trainer.train(EXAMPLES, run_dir=tmp_path / "run")


def rows_of(tokenizer_dir_path, texts):
    """Right-padded input ids, labels and attention mask of ``texts`` (the trainer's layout)."""
    from transformers import AutoTokenizer

    from finetunekit.backends.local.collation import PaddingCollator

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir_path)
    features = [{"input_ids": ids, "labels": ids} for ids in (tokenizer(t)["input_ids"] for t in texts)]
    return PaddingCollator(tokenizer.pad_token_id)(features)


def loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_the_frozen_layer_cache_gives_the_uncached_loss_and_gradients(three_layer_model):
    from finetunekit.backends.local.freezing import decoder_layers, freeze_below_top_layers
    from finetunekit.backends.local.frozen_cache import FrozenLayerCache

    model = transformers.AutoModelForCausalLM.from_pretrained(three_layer_model)
    freeze_below_top_layers(model, 1)
    batch = rows_of(three_layer_model, ["Item 1 is a red thing.", "Item two, a much longer blue thing than the first."])
    expected_loss, expected_grads = loss_and_grads(model, batch)
    cache = FrozenLayerCache(decoder_layers(model), 2)
    cache.install()
    for _ in range(2):  # the first pass fills the cache, the second answers from it
        with cache.batch(batch):
            loss, grads = loss_and_grads(model, batch)
        torch.testing.assert_close(loss, expected_loss)
        assert grads.keys() == expected_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, expected_grads[name])
    assert (cache.misses, cache.hits) == (1, 1)
    with cache.batch({k: v[1:] for k, v in batch.items()}):  # the second row alone, padded differently: a hit
        model(**{k: v[1:] for k, v in batch.items()})
    assert cache.hits == 2
    cache.remove()
    assert "forward" not in vars(decoder_layers(model)[0]) and not cache.store
    torch.testing.assert_close(loss_and_grads(model, batch)[0], expected_loss)


@pytest.mark.skipif(not DROPS_PAGES, reason="needs Linux's /proc/self/pagemap")
def test_the_cache_drops_the_frozen_weights_from_resident_memory_after_every_pass(three_layer_model):
    from finetunekit.backends.local.freezing import decoder_layers, freeze_below_top_layers
    from finetunekit.backends.local.frozen_cache import FrozenLayerCache

    model = transformers.AutoModelForCausalLM.from_pretrained(three_layer_model)  # memory-mapped weights
    freeze_below_top_layers(model, 1)
    frozen = [p for layer in decoder_layers(model)[:2] for p in layer.parameters()]
    values = [p.detach().clone() for p in frozen]
    batch = rows_of(three_layer_model, ["Item 1 is a red thing.", "Item two, a much longer blue thing than the first."])
    cache = FrozenLayerCache(decoder_layers(model), 2)
    cache.install()
    for passes in (1, 2):  # a miss runs the frozen layers, then a hit; each ends with their pages dropped
        with cache.batch(batch):
            model(**batch)
        assert cache.misses + cache.hits == passes and cache.dropped_bytes > 0
        assert sum(map(resident_pages, frozen)) == 0
        assert all(torch.equal(p, v) for p, v in zip(frozen, values))  # read back: resident again
        assert sum(map(resident_pages, frozen)) > 0
    cache.remove()


def train_top_layer(pm, model, run_dir, **options):
    """Train the top layer of ``model`` for 4 epochs, one example per micro-batch: its weights and the
    frozen-layer cache's counts (checking that gradient checkpointing, if asked for, covers that layer only)."""
    from finetunekit.backends.local.freezing import decoder_layers

    trainer = get_trainer("local", plugins=pm, **fast_training_options(
        model, full_finetune=True, trained_layers=1, epochs=4, learning_rate=1e-2, micro_batch_tokens=24, **options))
    tuned = trainer.train(EXAMPLES, run_dir=run_dir)
    checkpointed = [layer.gradient_checkpointing for layer in decoder_layers(trainer.trained_model)]
    assert checkpointed == [False, False, bool(options.get("gradient_checkpointing"))]  # the trained layer only
    return weights(tuned.chat_options["model"]), tuned.details["frozen_layer_cache"]


def assert_same_weights(got, expected):
    for name, value in got.items():
        torch.testing.assert_close(value, expected[name], rtol=1e-4, atol=1e-5)


def test_training_with_and_without_the_frozen_layer_cache_ends_at_the_same_weights(pm, three_layer_model, tmp_path):
    trained = {}
    for cached in (True, False):
        trained[cached], cache = train_top_layer(pm, three_layer_model, tmp_path / str(cached), frozen_layer_cache=cached)
        # 4 examples, one per micro-batch: the first epoch runs the frozen layers, the next three do not
        if cached:  # ... and drops the frozen weights from resident memory after each pass (on Linux)
            assert (cache.pop("dropped_bytes") > 0) == DROPS_PAGES
        assert cache == ({"hits": 12, "misses": 4} if cached else None)
    assert_same_weights(trained[True], trained[False])


def test_checkpointing_the_top_layers_recomputes_them_only_and_keeps_loss_and_gradients(three_layer_model):
    from finetunekit.backends.local.freezing import checkpoint_top_layers, decoder_layers, freeze_below_top_layers

    model = transformers.AutoModelForCausalLM.from_pretrained(three_layer_model)
    freeze_below_top_layers(model, 2)
    model.train()
    batch = rows_of(three_layer_model, ["Item 1 is a red thing.", "Item two, a much longer blue thing than the first."])
    expected_loss, expected_grads = loss_and_grads(model, batch)
    checkpoint_top_layers(model, 2)
    calls = [0, 0, 0]
    for index, layer in enumerate(decoder_layers(model)):  # the MLP inside each layer: the recomputation calls it again
        layer.mlp.register_forward_pre_hook(lambda module, args, index=index: calls.__setitem__(index, calls[index] + 1))
    loss, grads = loss_and_grads(model, batch)
    assert calls == [1, 2, 2]  # the trained layers ran again in the backward pass, the frozen one did not
    torch.testing.assert_close(loss, expected_loss)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name])


def test_training_with_checkpointed_top_layers_keeps_the_cache_and_ends_at_the_same_weights(pm, three_layer_model, tmp_path):
    trained = {}
    for checkpointing in (True, False):
        trained[checkpointing], cache = train_top_layer(
            pm, three_layer_model, tmp_path / str(checkpointing), gradient_checkpointing=checkpointing)
        assert (cache.pop("dropped_bytes") > 0) == DROPS_PAGES and cache == {"hits": 12, "misses": 4}
    assert_same_weights(trained[True], trained[False])
