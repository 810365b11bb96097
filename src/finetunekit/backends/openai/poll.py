"""Polling a fine-tuning job or a batch until it ends, showing each status change and each new
piece of progress (job events, batch request counts) once."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from finetunekit.redaction import scrub

KNOWN_STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
BATCH_STATUSES = ("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
                  "cancelled")
BATCH_TERMINAL_STATUSES = ("failed", "completed", "expired", "cancelled")


def say_to_stderr(message: str) -> None:
    """Print one progress line to stderr (scrubbed of secret values: an event may quote a key)."""
    print(scrub(message), file=sys.stderr, flush=True)


class StatusPoller:
    """Polls one API object with backoff until its status is terminal: ``min_interval`` after
    any change, growing 1.5× to ``max_interval``. Subclasses say how to retrieve it
    (:meth:`retrieve`) and what else is progress (:meth:`show_progress`).

    :param on_status: called with the object whenever its status changes (to record it).
    :param say: where progress lines go (stderr by default).
    :param sleep: the waiting function (tests may replace it).
    """

    kind = "object"
    known_statuses: tuple[str, ...] = ()
    terminal_statuses: tuple[str, ...] = ()

    def __init__(self, client: Any, object_id: str, *, min_interval: float, max_interval: float,
                 on_status: Callable[[Any], None] | None = None,
                 say: Callable[[str], None] = say_to_stderr,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.object_id = client, object_id
        self.min_interval, self.max_interval = min_interval, max(min_interval, max_interval)
        self.on_status, self.say, self.sleep = on_status, say, sleep
        self.status: str | None = None

    def retrieve(self) -> Any:
        """The object as the API shows it now."""
        raise NotImplementedError

    def show_progress(self, current: Any) -> bool:
        """Show what is new besides the status; whether anything was."""
        return False

    def poll(self) -> Any:
        """Return the object once its status is terminal."""
        interval = self.min_interval
        while True:
            current = self.retrieve()
            changed = self._show_status(current)
            changed |= self.show_progress(current)
            if current.status in self.terminal_statuses:
                return current
            interval = self.min_interval if changed else min(interval * 1.5, self.max_interval)
            self.sleep(interval)

    def _show_status(self, current: Any) -> bool:
        status = str(current.status)
        if status == self.status:
            return False
        self.status = status
        note = "" if status in self.known_statuses else " (a status finetunekit does not know; still polling)"
        self.say(f"[openai] {self.kind} {self.object_id}: {status}{note}")
        if self.on_status is not None:
            self.on_status(current)
        return True


class JobPoller(StatusPoller):
    """Polls a fine-tuning job, showing each new event once (``job_id``: the job)."""

    kind = "job"
    known_statuses = KNOWN_STATUSES
    terminal_statuses = TERMINAL_STATUSES

    def __init__(self, client: Any, job_id: str, **kwargs: Any) -> None:
        super().__init__(client, job_id, **kwargs)
        self.job_id = job_id
        self.seen_events: set[str] = set()

    def retrieve(self) -> Any:
        """The job now."""
        return self.client.fine_tuning.jobs.retrieve(self.job_id)

    def show_progress(self, current: Any) -> bool:
        """Show the job's events not shown yet, oldest first."""
        new = []
        for event in self.client.fine_tuning.jobs.list_events(self.job_id, limit=50):  # newest first
            if event.id in self.seen_events:
                break
            new.append(event)
        for event in reversed(new):
            self.seen_events.add(event.id)
            level = "" if event.level == "info" else f"{str(event.level).upper()}: "
            self.say(f"[openai] {level}{event.message}")
        return bool(new)


class BatchPoller(StatusPoller):
    """Polls a batch, showing its request counts (done, failed, total) whenever they change."""

    kind = "batch"
    known_statuses = BATCH_STATUSES
    terminal_statuses = BATCH_TERMINAL_STATUSES

    def __init__(self, client: Any, batch_id: str, **kwargs: Any) -> None:
        super().__init__(client, batch_id, **kwargs)
        self.counts: tuple[int, int, int] | None = None

    def retrieve(self) -> Any:
        """The batch now."""
        return self.client.batches.retrieve(self.object_id)

    def show_progress(self, current: Any) -> bool:
        """Show ``completed/total`` (and failures) when they changed."""
        counts = current.request_counts
        if counts is None:
            return False
        now = (counts.completed, counts.failed, counts.total)
        if now == self.counts:
            return False
        self.counts = now
        failed = f", {counts.failed} failed" if counts.failed else ""
        self.say(f"[openai] batch {self.object_id}: {counts.completed}/{counts.total} answered{failed}")
        return True
