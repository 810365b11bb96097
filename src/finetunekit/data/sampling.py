"""Seeded sampling over streams: reservoir sampling and split positions."""

from __future__ import annotations

import itertools
import random
from typing import Generic, Iterable, Sequence, TypeVar

from finetunekit.errors import ConfigError

T = TypeVar("T")


def check_count(n: object, what: str) -> int:
    """``n`` as a non-negative ``int``, or a :class:`ConfigError` naming ``what``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"{what} must be a non-negative integer, got {n!r}")
    return n


#: Items :func:`reservoir_sample` takes from its stream at a time.
BATCH = 4096


def reservoir_sample(items: Iterable[T], n: int, seed: int) -> list[T]:
    """``min(n, len(items))`` items drawn uniformly without replacement, in stream order.

    One pass, memory for ``n`` items only (Vitter's algorithm R). The same items and seed
    always give the same sample, whether the items come from a file or from memory.
    """
    reservoir: Reservoir[T] = Reservoir(n, seed)
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, BATCH)):
        reservoir.place_drawn(batch)
    return reservoir.items()


class Reservoir(Generic[T]):
    """The state of :func:`reservoir_sample`, for callers that build an item only once it is drawn.

    :meth:`draw` counts the next items of the stream and says which of them enter the sample
    and where; :meth:`place` puts them there. The draws depend only on ``seed`` and on how many
    items came before, never on the items, so a caller may count items it never builds.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seen = 0
        self._randrange = random.Random(seed).randrange
        self._slots: dict[int, tuple[int, T]] = {}

    def draw(self, count: int) -> dict[int, int]:
        """Count the next ``count`` items: ``{slot: position among them}`` of those that enter the
        sample (only the last one drawn into a slot: the earlier ones would be replaced at once)."""
        n, first = self.n, self.seen
        drawn = {index: index - first for index in range(first, min(first + count, n))}  # filling up
        randrange = self._randrange
        for index in range(max(first, n), first + count):
            slot = randrange(index + 1)
            if slot < n:
                drawn[slot] = index - first
        self.seen = first + count
        return drawn

    def place(self, slot: int, index: int, item: T) -> None:
        """Put ``item``, the stream's ``index``-th (0-based), into ``slot``."""
        self._slots[slot] = (index, item)

    def place_drawn(self, batch: Sequence[T]) -> None:
        """:meth:`draw` ``batch`` and :meth:`place` the items drawn."""
        first = self.seen
        for slot, position in self.draw(len(batch)).items():
            self._slots[slot] = (first + position, batch[position])

    def items(self) -> list[T]:
        """The sampled items, in stream order."""
        return [item for _, item in sorted(self._slots.values(), key=lambda pair: pair[0])]


def split_test_count(test_size: float | int, total: int) -> int:
    """How many of ``total`` rows a ``test_size`` (a fraction in (0, 1) or a count) asks for."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise ConfigError(f"test_size must be a fraction in (0, 1) or a row count, got {test_size!r}")
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise ConfigError(f"test_size as a fraction must be strictly between 0 and 1, got {test_size!r}")
        return round(test_size * total)
    if not 0 <= test_size <= total:
        raise ConfigError(f"test_size {test_size} is not a row count between 0 and {total} (the dataset's size)")
    return test_size


def split_test_positions(total: int, count: int, seed: int) -> frozenset[int]:
    """``count`` distinct positions in ``range(total)``, chosen by ``seed``."""
    return frozenset(random.Random(seed).sample(range(total), count))
