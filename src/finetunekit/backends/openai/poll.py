"""Polling a fine-tuning job until it ends, showing each status change and each new event once."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

KNOWN_STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")


def say_to_stderr(message: str) -> None:
    """Print one progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


class JobPoller:
    """Polls ``job_id`` with backoff: ``min_interval`` after any change, growing 1.5× to ``max_interval``.

    :param on_status: called with the job whenever its status changes (to record it).
    :param say: where progress lines go (stderr by default).
    :param sleep: the waiting function (tests may replace it).
    """

    def __init__(self, client: Any, job_id: str, *, min_interval: float, max_interval: float,
                 on_status: Callable[[Any], None] | None = None,
                 say: Callable[[str], None] = say_to_stderr,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.job_id = client, job_id
        self.min_interval, self.max_interval = min_interval, max(min_interval, max_interval)
        self.on_status, self.say, self.sleep = on_status, say, sleep
        self.seen_events: set[str] = set()
        self.status: str | None = None

    def poll(self) -> Any:
        """Return the job once its status is terminal."""
        interval = self.min_interval
        while True:
            job = self.client.fine_tuning.jobs.retrieve(self.job_id)
            changed = self._show_status(job)
            changed |= self._show_new_events()
            if job.status in TERMINAL_STATUSES:
                return job
            interval = self.min_interval if changed else min(interval * 1.5, self.max_interval)
            self.sleep(interval)

    def _show_status(self, job: Any) -> bool:
        status = str(job.status)
        if status == self.status:
            return False
        self.status = status
        note = "" if status in KNOWN_STATUSES else " (a status finetunekit does not know; still polling)"
        self.say(f"[openai] job {self.job_id}: {status}{note}")
        if self.on_status is not None:
            self.on_status(job)
        return True

    def _show_new_events(self) -> bool:
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
