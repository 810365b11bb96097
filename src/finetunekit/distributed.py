"""Several processes, one run: the rank helpers the pipeline, trainer and chat models share.

Under ``torchrun`` or ``accelerate launch`` (``WORLD_SIZE`` > 1) every process runs the same
code. Rank 0 (the *main process*) writes every run file; the others wait at a barrier and then
read what it wrote. Nothing here is home-made: the process group is accelerate's
``PartialState`` (gloo on CPU, NCCL on CUDA) and the collectives are ``torch.distributed``'s
(``barrier``, ``broadcast_object_list``, ``all_gather_object``). In a single process every
helper is a plain call and torch is never imported, so ``import finetunekit`` stays fast.

An error raised on the main process inside :func:`main_first` or :func:`from_main` is raised
on every process, so no process waits forever for a main process that has failed.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
from datetime import timedelta
from typing import Any, Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Seconds a process waits at a barrier (e.g. while rank 0 prepares a large dataset) before
#: the process group gives up; ``FINETUNEKIT_DIST_TIMEOUT`` overrides it.
DEFAULT_TIMEOUT_S = 3 * 3600

_SPLIT: contextvars.ContextVar[bool] = contextvars.ContextVar("finetunekit_split_work", default=False)


def launched() -> bool:
    """Whether this process is one of several started together (``WORLD_SIZE`` > 1)."""
    return _env_int("WORLD_SIZE", 1) > 1


def rank() -> int:
    """This process's global rank (0 in a single process)."""
    return _env_int("RANK", 0) if launched() else 0


def local_rank() -> int:
    """This process's rank on its machine (its GPU index; 0 in a single process)."""
    return _env_int("LOCAL_RANK", 0) if launched() else 0


def world_size() -> int:
    """How many processes work on the run (1 in a single process)."""
    return _env_int("WORLD_SIZE", 1)


def is_main_process() -> bool:
    """Whether this is the process that writes the run files (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if launched():
        _process_group().barrier()


def main_first(fn: Callable[[], T], *, others: Callable[[], T] | None = None) -> T:
    """Run ``fn`` on the main process while the others wait; then the others run ``others``
    (default: ``fn``), typically reading what the main process wrote. An error on the main
    process is raised on every process."""
    if not launched():
        return fn()
    if is_main_process():
        return _from_main(fn, share=False)
    _from_main(fn, share=False)  # waits for the main process; raises its error
    return (others or fn)()


def from_main(fn: Callable[[], T]) -> T:
    """``fn()`` computed on the main process and sent to every process (pickled), so all act on
    the same value (e.g. which checkpoint to resume)."""
    if not launched():
        return fn()
    return _from_main(fn, share=True)


@contextlib.contextmanager
def split_work() -> Iterator[None]:
    """Within this block, chat models that support it answer collectively: each process answers
    its share of the questions and every process gets all the answers (:func:`split_map`).
    Every process must then make the same calls with the same questions."""
    token = _SPLIT.set(True)
    try:
        yield
    finally:
        _SPLIT.reset(token)


def work_is_split() -> bool:
    """Whether this call runs inside :func:`split_work` with several processes."""
    return _SPLIT.get() and launched()


def split_map(fn: Callable[[list[T]], Sequence[R]], items: Sequence[T]) -> list[R]:
    """``fn(items)``, shared out: with several processes each applies ``fn`` to its contiguous
    share of ``items`` (an empty share is not passed to ``fn``) and the results are gathered,
    in the order of ``items``, on every process. An error on any process is raised on every
    process."""
    items = list(items)
    if not launched():
        return list(fn(items))
    n, me = world_size(), rank()
    share = items[me * len(items) // n : (me + 1) * len(items) // n]
    try:
        mine: tuple[str, Any] = ("ok", list(fn(share)) if share else [])
    except Exception as exc:  # every process must reach the gather, or the others wait forever
        mine = ("error", _portable(exc))
    gathered: list[Any] = [None] * n
    _process_group().all_gather_object(gathered, mine)
    for status, value in gathered:
        if status == "error":
            raise value
    return [result for _, results in gathered for result in results]


def local_device(device: str) -> str:
    """``cuda`` as this process's own GPU (``cuda:LOCAL_RANK``) when several processes run;
    any other device unchanged."""
    return f"cuda:{local_rank()}" if device == "cuda" and launched() else device


# -- internals -----------------------------------------------------------------------------


class _Failed:
    """What the main process sends instead of a value when ``fn`` raised."""

    def __init__(self, error: BaseException) -> None:
        self.error = _portable(error)


def _from_main(fn: Callable[[], T], *, share: bool) -> Any:
    payload: list[Any] = [None]
    if is_main_process():
        try:
            value = fn()
        except BaseException as exc:
            payload[0] = _Failed(exc)
            _broadcast(payload)
            raise
        payload[0] = value if share else None
        _broadcast(payload)
        return value
    _broadcast(payload)
    if isinstance(payload[0], _Failed):
        raise payload[0].error
    return payload[0]


def _broadcast(payload: list[Any]) -> None:
    _process_group().broadcast_object_list(payload, src=0)


def _portable(error: BaseException) -> BaseException:
    """``error`` itself if it survives pickling (to be raised on another process), else a
    RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _process_group() -> Any:
    """torch.distributed, with the process group started by accelerate's ``PartialState``
    (gloo on CPU, NCCL on CUDA) if nothing has started it yet."""
    dist = _dist()
    if not dist.is_initialized():
        import torch
        from accelerate import PartialState

        timeout = timedelta(seconds=_env_int("FINETUNEKIT_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
        PartialState(cpu=not torch.cuda.is_available(), timeout=timeout)
    return dist


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().lstrip("-").isdigit() else default
