"""A causal-LM loss that never holds the whole batch's logits: lm_head + cross-entropy in chunks.

A plain causal-LM loss computes logits for every position of the batch (batch × length ×
vocabulary, in float32 for the softmax: 8 × 320 × 49,152 × 4 bytes ≈ 0.5 GB), keeps them and
their float copies for the backward pass, and spends the output layer's matmul on prompt and
padding positions that carry no label. :func:`linear_cross_entropy` takes the final hidden
states of the label positions only and, chunk by chunk, computes the logits, the loss and the
gradients (with respect to the hidden states and, if it is trained, the output weight) at once,
keeping only those gradients for the backward pass. The values equal the plain loss's up to
floating-point summation order: the matmul runs in the same precision (bfloat16 under bf16
autocast, like ``lm_head`` would) and the softmax in float32 (like transformers' loss).
"""

from __future__ import annotations

import functools
from typing import Any

IGNORE_INDEX = -100

#: Label positions per chunk: 256 × 49,152 vocabulary × 4 bytes ≈ 50 MB of float32 logits at a time
#: (1,024 took ~100 MiB more at the peak of the example's training and no less time).
DEFAULT_CHUNK = 256


def shifted_labels(labels: Any, shift_labels: Any = None) -> Any:
    """The target of every position (``-100`` = none): ``shift_labels`` if given, else
    ``labels`` moved one to the left (position i predicts token i + 1), like transformers does."""
    import torch

    if shift_labels is not None:
        return shift_labels
    pad = torch.full_like(labels[..., :1], IGNORE_INDEX)
    return torch.cat([labels[..., 1:], pad], dim=-1)


def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    targets: Any,
    *,
    bias: Any = None,
    num_items: Any = None,
    chunk: int = DEFAULT_CHUNK,
) -> Any:
    """Summed cross-entropy of ``hidden @ weight.T (+ bias)`` against ``targets`` (``-100`` = skip),
    divided by ``num_items`` (default: the number of targets), computed in chunks of
    ``chunk`` positions.

    ``hidden``: (..., H) final hidden states; ``targets``: (...) token ids aligned with them.
    Under autocast the matmul runs in the autocast dtype, as the output layer would.
    """
    import torch

    flat_targets = targets.reshape(-1)
    keep = flat_targets != IGNORE_INDEX
    selected = hidden.reshape(-1, hidden.shape[-1])[keep]
    wanted = flat_targets[keep]
    count = wanted.numel()
    divisor = num_items if num_items is not None else count
    if torch.is_tensor(divisor):
        divisor = float(divisor.item())
    if count == 0:  # nothing to learn here: a zero that still reaches the graph
        return hidden.sum() * 0.0
    scale = 1.0 / max(float(divisor), 1.0)
    return _function().apply(selected, weight, bias, wanted, scale, int(chunk), _compute_dtype(hidden, weight))


def _compute_dtype(hidden: Any, weight: Any) -> Any:
    """The dtype ``lm_head`` would compute in: autocast's when it is on for this device, else the weight's."""
    import torch

    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


@functools.cache
def _function() -> Any:
    """The autograd Function (built on first use, so importing this module needs no torch)."""
    import torch

    class LinearCrossEntropy(torch.autograd.Function):
        """Forward computes the loss and its gradients chunk by chunk; backward scales them."""

        @staticmethod
        def forward(ctx, hidden, weight, bias, targets, scale, chunk, dtype):  # noqa: D102
            need_hidden = hidden.requires_grad
            need_weight = weight.requires_grad
            need_bias = bias is not None and bias.requires_grad
            with torch.autocast(hidden.device.type, enabled=False):
                w = weight.to(dtype)
                b = bias.to(dtype) if bias is not None else None
                total = torch.zeros((), dtype=torch.float32, device=hidden.device)
                grad_hidden = torch.empty_like(hidden) if need_hidden else None
                grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight else None
                grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if need_bias else None
                rows = torch.arange(min(chunk, targets.numel()), device=hidden.device)
                for start in range(0, targets.numel(), chunk):
                    h = hidden[start : start + chunk].to(dtype)
                    t = targets[start : start + chunk]
                    logits = h @ w.T
                    if b is not None:
                        logits = logits + b
                    logits = logits.float()
                    lse = torch.logsumexp(logits, dim=-1)
                    total += (lse - logits[rows[: t.numel()], t]).sum()
                    if not (need_hidden or need_weight or need_bias):
                        continue
                    grad = logits.sub_(lse[:, None]).exp_()  # softmax, in place
                    grad[rows[: t.numel()], t] -= 1.0
                    grad = grad.mul_(scale).to(dtype)
                    if need_hidden:
                        grad_hidden[start : start + chunk] = (grad @ w).to(hidden.dtype)
                    if need_weight:
                        grad_weight += (grad.T @ h).float()
                    if need_bias:
                        grad_bias += grad.float().sum(0)
            ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
            ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
            return total * scale

        @staticmethod
        def backward(ctx, grad_output):  # noqa: D102
            grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
            weight_dtype, bias_dtype = ctx.dtypes
            out = grad_output.float()
            return (
                grad_hidden * out.to(grad_hidden.dtype) if grad_hidden is not None else None,
                (grad_weight * out).to(weight_dtype) if grad_weight is not None else None,
                (grad_bias * out).to(bias_dtype) if grad_bias is not None else None,
                None, None, None, None,
            )

    return LinearCrossEntropy



#: Config attributes of models whose logits are not a plain ``lm_head(hidden)`` (soft-capped or
#: scaled logits): for those the chunked loss would be wrong, so the plain loss is used.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def base_causal_lm(model: Any) -> Any:
    """The transformers model inside a PEFT wrapper (or ``model`` itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def supports_chunked_loss(model: Any) -> bool:
    """Whether ``model``'s logits are ``lm_head(decoder(...))`` with nothing after it, and its
    forward takes ``logits_to_keep`` — what :func:`chunked_causal_lm_loss` relies on."""
    import inspect

    import torch

    lm = base_causal_lm(model)
    config = getattr(lm, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if any(getattr(config, name, None) not in (None, 1, 1.0) for name in LOGIT_TRANSFORMS):
        return False
    try:
        head = lm.get_output_embeddings()
        decoder = lm.get_decoder()
    except (AttributeError, NotImplementedError):
        return False
    if not isinstance(head, torch.nn.Linear) or decoder is None or decoder is lm:
        return False
    return "logits_to_keep" in inspect.signature(lm.forward).parameters


def chunked_causal_lm_loss(model: Any, inputs: dict[str, Any], num_items: Any = None, *, chunk: int = DEFAULT_CHUNK) -> tuple[Any, Any]:
    """``(loss, outputs)`` of a causal LM on ``inputs`` (``input_ids``, ``labels``, optional
    ``shift_labels``, mask, position ids), with the loss from :func:`linear_cross_entropy` on the
    decoder's final hidden states; ``outputs`` holds the last position's logits only.

    ``model`` is called as it is (wrappers such as autocast or PEFT take part); a forward hook
    on its decoder captures the hidden states."""
    lm = base_causal_lm(model)
    forward_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "shift_labels")}
    captured: dict[str, Any] = {}

    def keep_hidden(module: Any, args: Any, output: Any) -> None:
        captured["hidden"] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    handle = lm.get_decoder().register_forward_hook(keep_hidden)
    try:
        outputs = model(**forward_inputs, logits_to_keep=1)
    finally:
        handle.remove()
    head = lm.get_output_embeddings()
    targets = shifted_labels(inputs["labels"], inputs.get("shift_labels"))
    loss = linear_cross_entropy(captured["hidden"], head.weight, targets, bias=head.bias, num_items=num_items, chunk=chunk)
    return loss, outputs
