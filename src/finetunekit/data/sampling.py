"""Seeded sampling over streams: reservoir sampling and split positions."""

from __future__ import annotations

import random
from typing import Iterable, TypeVar

from finetunekit.errors import ConfigError

T = TypeVar("T")


def check_count(n: object, what: str) -> int:
    """``n`` as a non-negative ``int``, or a :class:`ConfigError` naming ``what``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"{what} must be a non-negative integer, got {n!r}")
    return n


def reservoir_sample(items: Iterable[T], n: int, seed: int) -> list[T]:
    """``min(n, len(items))`` items drawn uniformly without replacement, in stream order.

    One pass, memory for ``n`` items only (Vitter's algorithm R). The same items and seed
    always give the same sample, whether the items come from a file or from memory.
    """
    rng = random.Random(seed)
    reservoir: list[tuple[int, T]] = []
    randrange = rng.randrange
    for index, item in enumerate(items):
        if index < n:
            reservoir.append((index, item))
        else:
            slot = randrange(index + 1)
            if slot < n:
                reservoir[slot] = (index, item)
    reservoir.sort(key=lambda pair: pair[0])
    return [item for _, item in reservoir]


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
