"""Full fine-tuning of the top decoder layers only: everything below them stays frozen.

Freezing the embeddings and the lower decoder layers means the backward pass stops at the first
trained layer: no gradients for the frozen weights, no activation gradients below them, and no
optimizer state for them. On a CPU, training the top half of the layers takes about 0.6× the
time of a step that trains every weight (benchmarks/bench_train.py, docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

from finetunekit.errors import ConfigError


def decoder_layers(model: Any) -> Any:
    """The model's stack of decoder layers (``model.model.layers`` for Llama-style models)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(decoder, "layers", None) if decoder is not None else None
    if layers is None:
        raise ConfigError(
            f"trained_layers needs a decoder with a `layers` stack; {type(model).__name__} has none "
            "(unset trained_layers to train every weight)"
        )
    return layers


def freeze_below_top_layers(model: Any, top: int) -> int:
    """Freeze every parameter of ``model`` except those of its top ``top`` decoder layers and
    what follows them (the final norm; an untied output layer). Returns the number of trainable
    parameters. With tied input and output embeddings, the output layer stays frozen too."""
    layers = decoder_layers(model)
    if not 1 <= top <= len(layers):
        raise ConfigError(f"trained_layers = {top}, but the model has {len(layers)} decoder layers; "
                          f"choose 1 to {len(layers)}")
    frozen_embeddings = model.get_input_embeddings().weight
    model.requires_grad_(False)
    for layer in layers[len(layers) - top :]:
        layer.requires_grad_(True)
    for name, module in model.get_decoder().named_children():
        if name not in ("layers", "embed_tokens"):
            module.requires_grad_(True)  # the final norm (and whatever else follows the layers)
    output = model.get_output_embeddings()
    if output is not None and output.weight is not frozen_embeddings:
        output.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def checkpoint_top_layers(model: Any, top: int) -> None:
    """Recompute the top ``top`` decoder layers' activations in the backward pass instead of keeping
    them (non-reentrant activation checkpointing, so the frozen layers below need no gradients and
    their output may come from the frozen-layer cache). The layers below, which keep no activations
    for a backward pass, are left as they are."""
    from functools import partial

    from torch.utils.checkpoint import checkpoint
    from transformers.modeling_layers import GradientCheckpointingLayer

    for layer in decoder_layers(model)[-top:]:
        if not isinstance(layer, GradientCheckpointingLayer):
            raise ConfigError(
                f"{type(layer).__name__} layers cannot be checkpointed one by one (they are not transformers' "
                "GradientCheckpointingLayer); unset gradient_checkpointing, or unset trained_layers to train "
                "(and checkpoint) the whole model"
            )
        layer.gradient_checkpointing = True
        layer._gradient_checkpointing_func = partial(checkpoint, use_reentrant=False)
