"""The frozen bottom layers' output per training example, computed once instead of every epoch.

With ``trained_layers`` the embeddings and the decoder layers below the trained ones are frozen
and, without dropout, deterministic: an example's hidden states after them are the same in every
epoch. :class:`FrozenLayerCache` patches the first frozen layer to return them from a cache
(keyed by the example's token ids; rows are right-padded, so a row's real tokens never see its
padding) and the other frozen layers to pass their input through; a batch whose rows are not all
cached runs the frozen layers as usual and fills the cache. From the second epoch on, the forward
pass starts at the first trained layer. The cache holds at most ``max_bytes``; beyond that, rows
are computed every time. Not used with packing (a packed row's attention depends on its position
ids). Gradient checkpointing then recomputes the trained layers only (non-reentrant checkpoints need
no gradients through the frozen layers' output). After every forward pass the cache drops the
frozen layers' memory-mapped weights from the process's resident memory (:mod:`.file_pages`): the
kernel maps them back from its page cache when the frozen layers run again (a batch the cache
cannot answer) or a checkpoint reads them, so they are resident only while they are used.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from finetunekit.backends.local.file_pages import drop_file_pages

#: The most memory the cache takes (hidden states of the training examples): 1 GiB.
DEFAULT_MAX_BYTES = 1 << 30


class FrozenLayerCache:
    """Caches the output of ``layers[:frozen]`` per example while installed (see the module doc)."""

    def __init__(self, layers: Any, frozen: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.layers = layers
        self.frozen = frozen
        self.max_bytes = max_bytes
        self.dropped_bytes = 0  #: the most resident bytes of frozen weights one drop released
        self.store: dict[tuple[int, ...], Any] = {}
        self.bytes = 0
        self.hits = 0  #: batches answered from the cache
        self.misses = 0  #: batches that ran the frozen layers
        self._keys: list[tuple[int, ...]] | None = None
        self._forwards: list[Any] = []

    def install(self) -> None:
        """Patch the frozen layers (the first answers from the cache, the others pass through)."""
        if self._forwards or self.frozen < 1:
            return
        self._forwards = [layer.forward for layer in self.layers[: self.frozen]]
        self.layers[0].forward = self._first_frozen_layer
        for layer in self.layers[1 : self.frozen]:
            layer.forward = _pass_through

    def remove(self) -> None:
        """Restore the frozen layers' own forward and empty the cache."""
        for layer in self.layers[: len(self._forwards)]:
            vars(layer).pop("forward", None)  # the class's forward again (the patch is an instance attribute)
        self._forwards = []
        self.store.clear()
        self.bytes = 0

    @contextlib.contextmanager
    def batch(self, inputs: dict[str, Any]) -> Iterator[None]:
        """Within this context the model's forward runs on ``inputs`` (right-padded rows)."""
        ids = inputs.get("input_ids")
        if ids is None or "position_ids" in inputs or "inputs_embeds" in inputs:
            yield  # not keyed: the frozen layers run as usual
            return
        mask = inputs.get("attention_mask")
        lengths = mask.sum(dim=1).tolist() if mask is not None else [ids.shape[1]] * ids.shape[0]
        self._keys = [tuple(row[: int(n)].tolist()) for row, n in zip(ids, lengths)]
        try:
            yield
        finally:
            self._keys = None

    def _first_frozen_layer(self, hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
        keys = self._keys
        if keys is not None and len(keys) == hidden_states.shape[0] and all(k in self.store for k in keys):
            self.hits += 1
            self._drop_frozen_weight_pages()  # e.g. read back by a checkpoint since the last batch
            cached = [self.store[k] for k in keys]
            out = cached[0].new_zeros((len(keys), hidden_states.shape[1], cached[0].shape[-1]))
            for row, value in enumerate(cached):
                out[row, : value.shape[0]] = value
            return out
        self.misses += 1
        for forward in self._forwards:
            hidden_states = forward(hidden_states, *args, **kwargs)
        if keys is not None and len(keys) == hidden_states.shape[0]:
            for row, key in enumerate(keys):
                value = hidden_states[row, : len(key)].detach()
                size = value.numel() * value.element_size()
                if key not in self.store and self.bytes + size <= self.max_bytes:
                    self.store[key] = value.clone()
                    self.bytes += size
        self._drop_frozen_weight_pages()  # not read again before the next pass the cache cannot answer
        return hidden_states

    def _drop_frozen_weight_pages(self) -> None:
        """Drop the frozen weights' memory-mapped pages from resident memory until they are read again."""
        weights = (p for layer in self.layers[: self.frozen] for p in layer.parameters())
        self.dropped_bytes = max(self.dropped_bytes, drop_file_pages(weights))


def _pass_through(hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
    """A frozen layer whose work the cached first frozen layer has done."""
    return hidden_states
