"""Splitting a padded training batch into padding-free pieces with the same loss.

A batch (right-padded ``input_ids``, ``labels``, ``attention_mask``) is cut into micro-batches
of at most ``budget`` tokens each (padding included), each padded only to its own longest row;
the trainer runs forward and backward on each and sums — the batch's loss and gradients, since
the loss is a sum over label tokens divided by the whole batch's count (``num_items_in_batch``).

:func:`pack` lays a micro-batch's examples end to end in one row instead, with position ids
restarting at 0 for each example: transformers then keeps every example's attention to itself
(a block-diagonal causal mask, or flash-attention's variable-length kernel) — provided the
forward builds no KV cache (transformers only looks for packed rows then), so a packed batch
carries ``use_cache=False``. Each example's first label is ``-100``, so no example learns to
predict the next one's first token.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def row_lengths(batch: dict[str, Any]) -> list[int]:
    """The real (unpadded) length of each row of a right-padded batch."""
    return [int(n) for n in batch["attention_mask"].sum(dim=1).tolist()]


def split_rows(lengths: list[int], budget: int) -> list[list[int]]:
    """Row indices grouped, longest first, so that ``rows × longest row`` stays within ``budget``
    tokens per group (a row longer than ``budget`` is a group of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for index in order:
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= budget:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def take_rows(batch: dict[str, Any], rows: list[int], lengths: list[int]) -> dict[str, Any]:
    """The ``rows`` of a right-padded batch, padded only to their longest; without an attention
    mask when no row needs padding."""
    width = max(lengths[i] for i in rows)
    part = {key: batch[key][rows, :width] for key in ("input_ids", "labels", "attention_mask")}
    if all(lengths[i] == width for i in rows):
        del part["attention_mask"]
    return part


def pack(batch: dict[str, Any], rows: list[int], lengths: list[int]) -> dict[str, Any]:
    """The ``rows`` of a right-padded batch laid end to end in one row, position ids restarting
    per example, each example's first label ``-100``; no attention mask, no KV cache (with a cache,
    transformers would not look for packed rows and examples would attend to each other)."""
    import torch

    ids, labels, positions = [], [], []
    for i in rows:
        n = lengths[i]
        ids.append(batch["input_ids"][i, :n])
        row_labels = batch["labels"][i, :n].clone()
        row_labels[0] = IGNORE_INDEX
        labels.append(row_labels)
        positions.append(torch.arange(n, device=batch["input_ids"].device))
    return {
        "input_ids": torch.cat(ids)[None],
        "labels": torch.cat(labels)[None],
        "position_ids": torch.cat(positions)[None],
        "use_cache": False,
    }


def micro_batches(batch: dict[str, Any], budget: int | None, *, packed: bool = False) -> list[dict[str, Any]]:
    """``batch`` as padding-free micro-batches of at most ``budget`` tokens (all in one when
    ``budget`` is None), each padded to its own longest row or, with ``packed``, packed into one row."""
    lengths = row_lengths(batch)
    if budget is None:
        groups = [sorted(range(len(lengths)), key=lambda i: -lengths[i])]
    elif packed:
        groups = _fill(lengths, budget)
    else:
        groups = split_rows(lengths, budget)
    return [pack(batch, rows, lengths) if packed else take_rows(batch, rows, lengths) for rows in groups]


def _fill(lengths: list[int], budget: int) -> list[list[int]]:
    """Row indices grouped, longest first, so that each group's total length stays within ``budget``."""
    groups: list[list[int]] = []
    total = 0
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if groups and total + lengths[index] <= budget:
            groups[-1].append(index)
            total += lengths[index]
        else:
            groups.append([index])
            total = lengths[index]
    return groups
