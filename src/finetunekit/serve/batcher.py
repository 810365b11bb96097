"""An asyncio micro-batcher: requests that arrive together are answered by one batched call.

:meth:`MicroBatcher.submit` queues a job and waits for its result. A single collector task
takes the first waiting job, then keeps collecting for at most ``max_wait`` seconds or until
``max_batch`` jobs are in hand, and runs them as one batch on a worker thread (so the event
loop keeps accepting requests meanwhile; jobs that arrive during a batch form the next one).
The batch function returns one result or one exception per job: one bad job fails alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

Job = TypeVar("Job")


@dataclass
class _Waiting(Generic[Job]):
    job: Job
    future: asyncio.Future[Any]


class MicroBatcher(Generic[Job]):
    """Runs ``run_batch(jobs) -> results`` (one result or exception per job, in order) over
    jobs collected for up to ``max_wait`` seconds, at most ``max_batch`` at a time, one batch
    at a time on a worker thread."""

    def __init__(self, run_batch: Callable[[list[Job]], Sequence[Any]], *, max_batch: int = 32,
                 max_wait: float = 0.005) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait >= 0, got {max_batch} and {max_wait}")
        self.run_batch, self.max_batch, self.max_wait = run_batch, max_batch, max_wait
        #: Batches run and jobs answered so far.
        self.batches = 0
        self.jobs = 0
        self._queue: asyncio.Queue[_Waiting[Job]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="finetunekit-generate")

    async def start(self) -> None:
        """Start collecting (call from the running event loop)."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Stop collecting; jobs still waiting are cancelled."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while self._queue is not None and not self._queue.empty():
            self._queue.get_nowait().future.cancel()
        self._pool.shutdown(wait=True)

    async def submit(self, job: Job) -> Any:
        """Queue ``job`` and wait for its result (its exception is raised here)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        waiting = _Waiting(job, asyncio.get_running_loop().create_future())
        await self._queue.put(waiting)
        return await waiting.future

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            live = [w for w in batch if not w.future.done()]  # a client that went away cancelled its future
            if live:
                await self._run(loop, live)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Waiting[Job]]) -> None:
        try:
            results = await loop.run_in_executor(self._pool, self.run_batch, [w.job for w in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the batch function returned {len(results)} results for {len(batch)} jobs")
        except Exception as exc:  # noqa: BLE001 - every job of the batch gets the error
            results = [exc] * len(batch)
        self.batches += 1
        self.jobs += len(batch)
        for waiting, result in zip(batch, results):
            if waiting.future.done():
                continue
            if isinstance(result, BaseException):
                waiting.future.set_exception(result)
            else:
                waiting.future.set_result(result)
