"""``transformers.Trainer`` with the memory-saving causal-LM loss (see :mod:`.loss`) and
padding-free micro-batches (see :mod:`.batching`), and the frozen layers' output cached per
example (see :mod:`.frozen_cache`).

Everything else — the loop, accelerate (DDP, FSDP, DeepSpeed), checkpoints, logging — is
``transformers.Trainer``'s own. The chunked loss is used in a single process when the model
supports it (:func:`~finetunekit.backends.local.loss.supports_chunked_loss`); otherwise, or with
``chunked_loss=False``, the model computes its own loss as usual. A batch is split into
micro-batches (``micro_batch_tokens``, optionally ``packed``) only where the loss is a sum
divided by the batch's label count, so that the pieces add up to the batch's loss and gradients.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def chunked_loss_trainer_class() -> type:
    """A ``transformers.Trainer`` subclass whose ``compute_loss`` never holds the batch's logits."""
    from transformers import Trainer

    from finetunekit.backends.local.batching import micro_batches
    from finetunekit.backends.local.loss import DEFAULT_CHUNK, chunked_causal_lm_loss, supports_chunked_loss

    class ChunkedLossTrainer(Trainer):
        """``transformers.Trainer`` computing the loss from hidden states, chunk by chunk, on label positions only."""

        def __init__(
            self, *args: Any, chunked_loss: bool = True, loss_chunk: int = DEFAULT_CHUNK,
            micro_batch_tokens: int | None = None, packed: bool = False, frozen_cache: Any = None, **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.frozen_cache = frozen_cache
            self.loss_chunk = loss_chunk
            self.micro_batch_tokens = micro_batch_tokens
            self.packed = packed
            self.chunked_loss = (
                chunked_loss
                and supports_chunked_loss(self.model)
                and self.args.world_size == 1
                and self.label_smoother is None
                and self.compute_loss_func is None
            )

        def training_step(self, model, inputs, num_items_in_batch=None):  # noqa: D102 - transformers hook
            splittable = (
                (self.micro_batch_tokens is not None or self.packed)
                and num_items_in_batch is not None  # each piece is divided by the whole batch's label count
                and self.model_accepts_loss_kwargs
                and self.args.world_size == 1
                and "attention_mask" in inputs
            )
            if not splittable:
                return super().training_step(model, inputs, num_items_in_batch)
            total = None
            for part in micro_batches(inputs, self.micro_batch_tokens, packed=self.packed):
                loss = super().training_step(model, part, num_items_in_batch)
                total = loss if total is None else total + loss
            return total

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102 - transformers hook
            if self.frozen_cache is None:
                return self._compute_loss(model, inputs, return_outputs, num_items_in_batch)
            with self.frozen_cache.batch(inputs):  # the frozen layers' output for these rows, from the cache
                return self._compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def _compute_loss(self, model, inputs, return_outputs, num_items_in_batch):
            if not self.chunked_loss or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            # the model scales by num_items_in_batch only when its forward takes loss kwargs (Trainer's rule)
            num_items = num_items_in_batch if self.model_accepts_loss_kwargs else None
            with self.accelerator.autocast():  # the output layer's matmul in the precision the model's forward used
                loss, outputs = chunked_causal_lm_loss(model, inputs, num_items, chunk=self.loss_chunk)
            return (loss, outputs) if return_outputs else loss

    return ChunkedLossTrainer
