"""Full fine-tuning of the top decoder layers only (``trained_layers``), run for real on a tiny Llama."""

from __future__ import annotations

import pytest

from finetunekit.errors import ConfigError
from finetunekit.registry import get_trainer
from local_fixtures import fast_training_options, read_csv, smollm2_tokenizer_dir, tiny_llama_dir

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

EXAMPLES = [
    {"messages": [{"role": "user", "content": f"Tell me about item {n}."},
                  {"role": "assistant", "content": f"Item {n} is a {colour} thing."}]}
    for n, colour in enumerate(["red", "blue", "green", "white"])
]


@pytest.fixture(scope="module")
def three_layer_model(tmp_path_factory):
    tokenizer = smollm2_tokenizer_dir(tmp_path_factory.mktemp("tok"))
    return str(tiny_llama_dir(tokenizer, tmp_path_factory.mktemp("tiny3"), layers=3))


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
