"""Greedy decoding whose batch stays full: rows leave when they end, waiting prompts join.

``transformers``' ``generate`` runs a batch until its longest answer ends, so a batch whose
answers range from 20 to 260 tokens spends most of its steps on rows that are already done.
:func:`decode_greedy` decodes a stream of prompts through at most ``slots`` rows at a time: a row
that ends its turn (or reaches ``max_new_tokens``) stops being decoded at once, and once a
quarter of the places are free (or the last prompts can all join) the next prompts are prefilled
and joined to the running batch (continuous batching). Ended rows are dropped from the batch at
that point, or as soon as they are more than an eighth of it.

Every row keeps its padding on the left and its real tokens the position ids a left-padded
``generate`` batch gives them, so a row's tokens are the ones ``generate`` picks for it up to
rounding (matrix products over a different number of rows may round differently in low
precision). Keys and values live in per-layer buffers written in place, with room to grow,
instead of being concatenated into a new tensor at every token. Plain greedy decoding only: no
logits processors (see :func:`supports_continuous_decoding`), and models whose layers all use
full attention with an ordinary key/value cache.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from transformers.cache_utils import DynamicCache, DynamicLayer

ROOM = 64  # cache columns allocated ahead, so a step writes in place

#: Generation-config fields that change greedy scores (``generate`` applies them; this decoder does not).
SCORE_CHANGING = {
    "repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0), "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,), "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "sequence_bias": (None,),
    "min_new_tokens": (None, 0), "min_length": (None, 0), "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,), "exponential_decay_length_penalty": (None,),
}


def supports_continuous_decoding(model: Any) -> bool:
    """Whether :func:`decode_greedy` gives ``model`` the answers ``generate`` would: its generation
    config changes no scores (no repetition penalty, suppressed or forced tokens, minimum length)
    and every decoder layer is full attention with an ordinary key/value cache."""
    generation = getattr(model, "generation_config", None)
    for name, neutral in SCORE_CHANGING.items():
        value = getattr(generation, name, None)
        if value not in neutral and value != []:
            return False
    config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return set(layer_types) == {"full_attention"} and not getattr(config, "num_kv_shared_layers", 0)


@dataclass
class Decoded:
    """One prompt's greedy answer: its tokens (cut before the stop token), the log-probability
    of each generated token (the stop token's included), and whether the model ended its turn."""

    tokens: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    finished: bool = False


class BufferLayer(DynamicLayer):
    """One layer's cached keys and values (rows × heads × columns × dim), in a buffer with room to
    grow: each step writes its column in place."""

    def __init__(self, keys: Any, values: Any, length: int) -> None:
        super().__init__()
        self._keys, self._values, self.length = keys, values, length
        self.device = keys.device
        self.is_initialized = True
        self._expose()

    @classmethod
    def joined(cls, pieces: Sequence[tuple[Any, Any, Any]], width: int) -> BufferLayer:
        """A layer holding the rows of ``pieces`` (keys, values, and the rows to take or ``None``
        for all) one under the other, each right-aligned in ``width`` columns (zeros on the left;
        columns further left are dropped), with :data:`ROOM` more columns to grow."""
        keys, values, _ = pieces[0]
        count = sum(k.shape[0] if rows is None else len(rows) for k, _, rows in pieces)
        new_keys = keys.new_zeros(count, keys.shape[1], width + ROOM, keys.shape[-1])
        new_values = values.new_zeros(count, values.shape[1], width + ROOM, values.shape[-1])
        start = 0
        for keys, values, rows in pieces:
            used = min(width, keys.shape[-2])
            keys, values = keys[..., keys.shape[-2] - used :, :], values[..., values.shape[-2] - used :, :]
            if rows is not None:
                keys, values = keys[rows], values[rows]  # this layer's rows only: a small copy
            end = start + keys.shape[0]
            new_keys[start:end, :, width - used : width] = keys
            new_values[start:end, :, width - used : width] = values
            start = end
        return cls(new_keys, new_values, width)

    def _expose(self) -> None:
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Append the new columns in place (moving to a bigger buffer when this one is full)."""
        new = key_states.shape[-2]
        if self.length + new > self._keys.shape[-2]:
            grown = BufferLayer.joined([(self.keys, self.values, None)], self.length)
            self._keys, self._values = grown._keys, grown._values
        self._keys[:, :, self.length : self.length + new] = key_states
        self._values[:, :, self.length : self.length + new] = value_states
        self.length += new
        self._expose()
        return self.keys, self.values


def decode_greedy(
    model: Any, prompts: Sequence[Sequence[int]], *, pad_id: int, stop_ids: Sequence[int], max_new_tokens: int,
    slots: int, on_done: Callable[[int, Decoded], None] | None = None,
) -> list[Decoded]:
    """Greedy answers to ``prompts`` (token ids), at most ``slots`` decoded together, in order.

    Prompts join in the order given (sort them by length for less padding). ``on_done(index,
    decoded)`` is called as each answer completes. Runs without autograd (the cache is written in
    place).
    """
    import torch

    if slots < 1 or max_new_tokens < 1:
        raise ValueError(f"decode_greedy needs slots >= 1 and max_new_tokens >= 1 (got {slots}, {max_new_tokens})")
    with torch.inference_mode():
        return _decode(model, prompts, pad_id, stop_ids, max_new_tokens, slots, on_done)


def _decode(model: Any, prompts: Sequence[Sequence[int]], pad_id: int, stop_ids: Sequence[int], max_new_tokens: int,
            slots: int, on_done: Any) -> list[Decoded]:
    import torch

    answers = _Answers(len(prompts), torch.tensor(sorted(set(stop_ids)), dtype=torch.long), max_new_tokens, on_done)
    waiting = deque(range(len(prompts)))
    batch: _Batch | None = None
    while waiting or batch is not None:
        free = slots - (batch.live if batch else 0)
        joins = bool(waiting) and free >= min(len(waiting), max(1, slots // 4))
        if batch is None or joins or batch.dead > batch.size // 8:
            joining = [waiting.popleft() for _ in range(min(free, len(waiting)))]
            batch = _Batch.rebuild(model, batch, [(i, prompts[i]) for i in joining], pad_id, answers)
        else:
            batch.step(model, answers)
        if batch is not None and batch.live == 0:
            batch = None  # every row ended: its cache goes before the next prompts are prefilled
    return answers.decoded


class _Answers:
    """The answers so far: each step's greedy tokens are recorded here, and a row that ends is told so."""

    def __init__(self, count: int, stops: Any, max_new_tokens: int, on_done: Any) -> None:
        self.decoded = [Decoded() for _ in range(count)]
        self.stops, self.max_new_tokens, self.on_done = stops, max_new_tokens, on_done

    def take(self, index: list[int], logits: Any) -> Any:
        """Record each row's greedy token from its ``logits`` (float32, rows × vocab); the rows that
        end get index -1 in ``index``. Returns the tokens, to be fed next."""
        import torch

        best = logits.log_softmax(-1).max(-1)
        tokens, scores = best.indices.tolist(), best.values.tolist()
        ended = torch.isin(best.indices, self.stops.to(best.indices.device)).tolist()
        for row, i in enumerate(index):
            if i < 0:
                continue
            answer = self.decoded[i]
            answer.log_probs.append(scores[row])
            if ended[row]:
                answer.finished = True
            else:
                answer.tokens.append(tokens[row])
            if answer.finished or len(answer.log_probs) >= self.max_new_tokens:
                index[row] = -1
                if self.on_done is not None:
                    self.on_done(i, answer)
        return best.indices


class _Batch:
    """The rows being decoded: the prompt each answers (-1 once it ended), the cache, the attention
    mask, each row's next position and the token it is fed next."""

    def __init__(self, index: list[int], cache: Any, mask: Any, positions: Any, tokens: Any) -> None:
        self.index, self.cache, self.mask, self.positions, self.tokens = index, cache, mask, positions, tokens

    @property
    def size(self) -> int:
        """Rows in the batch, ended ones included."""
        return len(self.index)

    @property
    def live(self) -> int:
        """Rows still answering."""
        return sum(1 for i in self.index if i >= 0)

    @property
    def dead(self) -> int:
        """Rows that ended but still take a place (until the next rebuild)."""
        return self.size - self.live

    @classmethod
    def rebuild(cls, model: Any, old: _Batch | None, joining: list[tuple[int, Sequence[int]]], pad_id: int,
                answers: _Answers) -> _Batch | None:
        """``old``'s live rows joined by the prefilled ``joining`` prompts (their first tokens taken),
        every row right-aligned on one column axis, the columns no row uses dropped."""
        import torch

        parts = []  # (index, cache layers, rows to keep or None, mask, positions, tokens)
        if old is not None and old.live:
            keep = torch.tensor([row for row, i in enumerate(old.index) if i >= 0], device=old.mask.device)
            parts.append(([old.index[r] for r in keep.tolist()], old.cache.layers, keep, old.mask[keep],
                          old.positions[keep], old.tokens[keep]))
        if joining:
            parts.append(_prefill(model, joining, pad_id, answers))
        if not parts:
            return None
        width = max(_used_width(part[3]) for part in parts)
        cache = DynamicCache()
        cache.layers = []
        for n in range(len(parts[0][1])):
            pieces = [(part[1][n].keys, part[1][n].values, part[2]) for part in parts]
            cache.layers.append(BufferLayer.joined(pieces, width))
            del pieces
            for part in parts:
                part[1][n] = None  # the old layer's memory goes as soon as it is copied
        mask = torch.cat([_right_align(part[3], width) for part in parts])
        return cls([i for part in parts for i in part[0]], cache, mask, torch.cat([p[4] for p in parts]),
                   torch.cat([p[5] for p in parts]))

    def step(self, model: Any, answers: _Answers) -> None:
        """Feed every row its next token, then take each live row's following one."""
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones(self.size, 1)], dim=-1)
        out = model(input_ids=self.tokens[:, None], attention_mask=self.mask, position_ids=self.positions[:, None],
                    cache=self.cache, use_cache=True)
        self.positions = self.positions + 1
        self.tokens = answers.take(self.index, out.logits[:, -1, :].float())


def _prefill(model: Any, joining: list[tuple[int, Sequence[int]]], pad_id: int, answers: _Answers) -> tuple:
    """Run the joining prompts, left-padded, through the model and take their first tokens: their
    index, cache layers, ``None`` (every row kept), mask, next positions and next tokens."""
    index = [i for i, _ in joining]
    ids, mask = left_pad([prompt for _, prompt in joining], pad_id, next(model.parameters()).device)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    cache = DynamicCache()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1)
    tokens = answers.take(index, out.logits[:, -1, :].float())
    return index, cache.layers, None, mask, mask.sum(-1), tokens


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """Left-padded ``input_ids`` and ``attention_mask`` tensors for a batch of id lists, on ``device``."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, row in enumerate(rows):
        ids[n, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
        mask[n, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def _used_width(mask: Any) -> int:
    """How many columns, counted from the right, some row of ``mask`` uses."""
    used = (mask > 0).any(0).nonzero()
    return int(mask.shape[-1] - used[0]) if len(used) else 0


def _right_align(mask: Any, width: int) -> Any:
    """The last ``width`` columns of ``mask``, left-padded with zeros to ``width``."""
    import torch

    have = mask.shape[-1]
    if have >= width:
        return mask[:, have - width :]
    return torch.cat([mask.new_zeros(mask.shape[0], width - have), mask], dim=-1)
