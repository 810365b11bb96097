"""The Batch API path of the openai chat model: requests → JSONL → one batch → poll → answers.

For the questions not in the answer cache, :class:`BatchRunner`:

1. reattaches to the open batches recorded under ``<answer_cache_dir>/batches/`` that hold
   some of them (a killed or interrupted run), and records a new batch for the rest
   (``batch_max_requests`` per batch) *before* uploading anything;
2. uploads the JSONL input (``purpose="batch"``) and creates the batch
   (``/v1/chat/completions``, ``completion_window="24h"``, the record's token in its metadata,
   so a batch created by a run killed before it could record the id is found, not recreated);
3. polls it with backoff, then downloads the output and error files, caching every answer;
4. sends the requests that failed with a retryable error (HTTP 408/409/429/5xx, a timeout, a
   batch that expired before running them) again in a smaller batch, at most
   ``batch_retries`` times; what still has no answer is raised as a :class:`BatchLinesError`
   naming each request (custom_id, question, status, error).

A batch the API failed (its input did not validate) raises :class:`BatchFailedError`, a batch
cancelled on the provider's side :class:`BatchCancelledError`; both after caching whatever
answers it and the other batches of the round gave. Nothing is sent twice: a rerun asks only
for what the cache still lacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetunekit.answer_cache import AnswerCache
from finetunekit.backends.openai.batch_state import (
    BATCH_ENDPOINT,
    RUN_TOKEN_KEY,
    BatchCancelledError,
    BatchFailedError,
    BatchLinesError,
    BatchRecord,
    BatchRequest,
    LineError,
    input_bytes,
)
from finetunekit.backends.openai.client import api_errors, endpoint_of
from finetunekit.backends.openai.poll import BatchPoller

if TYPE_CHECKING:
    from pathlib import Path

    from finetunekit.backends.openai.chat import OpenAIChatModel

#: line errors a later batch may fix
RETRYABLE_CODES = frozenset({"batch_expired", "request_timeout", "server_error", "rate_limit_exceeded",
                             "internal_error", "missing_from_output"})
#: batches the API lists when looking for one a killed run created
LOOKUP_LIMIT = 100
#: the API's size limit of a batch input file (with some room)
MAX_INPUT_BYTES = 190 * 1024 * 1024


def retryable(status_code: int | None, code: str | None) -> bool:
    """Whether a request that failed so may succeed when sent again."""
    if status_code is not None and status_code != 200:
        return status_code in (408, 409, 429) or status_code >= 500
    return code in RETRYABLE_CODES


def retry_delay(exc: Any, attempt: int) -> float:
    """Seconds before the next attempt: the server's ``Retry-After`` (at most a minute), else
    0.5 s doubling per attempt up to a minute."""
    response = getattr(exc, "response", None)
    try:
        given = float(response.headers.get("retry-after")) if response is not None else None
    except (TypeError, ValueError):
        given = None
    return min(60.0, given if given is not None and given >= 0 else 0.5 * 2 ** attempt)


@dataclass
class Outcome:
    """What one ended batch gave: answers by request key, and why the others got none."""

    status: str
    answers: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    failures: dict[str, LineError] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


class BatchRunner:
    """Answers requests through the Batch API for ``model``, caching each answer in ``cache``."""

    def __init__(self, model: OpenAIChatModel, client: Any, cache: AnswerCache) -> None:
        self.model, self.client, self.cache = model, client, cache
        self.options = model.options
        self.directory: Path = BatchRecord.directory(cache.directory)
        self.say = model.say if self.options.progress else (lambda message: None)

    def run(self, wanted: list[BatchRequest]) -> dict[str, tuple[str, float | None]]:
        """``(answer, confidence)`` by request key for every request in ``wanted`` (raises a
        :class:`~finetunekit.backends.openai.batch_state.BatchError` for those without one)."""
        pending = {request.key: request for request in wanted}
        answers: dict[str, tuple[str, float | None]] = {}
        final: list[LineError] = []
        rounds = self.options.batch_retries + 1
        for round_number in range(1, rounds + 1):
            if not pending:
                break
            records = self._reattach(pending) if round_number == 1 else []
            covered = {key for _, keys in records for key in keys}
            new = [request for key, request in pending.items() if key not in covered]
            records += [(record, {r.key for r in chunk}) for record, chunk in self._record_new(new, round_number)]
            outcomes = [self._finish(record) for record, _ in records]
            failures: dict[str, LineError] = {}
            for (record, keys), outcome in zip(records, outcomes):
                answers.update((key, answer) for key, answer in outcome.answers.items() if key in keys)
                failures.update((key, error) for key, error in outcome.failures.items() if key in keys)
                failures.update((key, self._missing(pending[key], record)) for key in keys
                                if key not in outcome.answers and key not in outcome.failures)
            unanswered = [key for key in pending if key not in answers]
            self._raise_for_ended_batches(outcomes, [failures[key] for key in unanswered])
            retry = {key: pending[key] for key in unanswered
                     if round_number < rounds and retryable(failures[key].status_code, failures[key].code)}
            final += [failures[key] for key in unanswered if key not in retry]
            if retry:
                self.say(f"[openai] {len(retry)} request(s) failed with a retryable error; sending them again "
                         f"in a smaller batch (retry {round_number} of {rounds - 1})")
            pending = retry
        if final:
            raise BatchLinesError(
                f"{len(final)} of {len(wanted)} request(s) got no answer from the Batch API "
                f"(after up to {self.options.batch_retries} retry batch(es) for retryable errors); the other "
                "answers are cached, a rerun sends only these", final)
        return answers

    # -------------------------------------------------------------- records
    def _reattach(self, pending: dict[str, BatchRequest]) -> list[tuple[BatchRecord, set[str]]]:
        """Open records holding some pending request with the same body: their batches answer it."""
        found = []
        for record in BatchRecord.open_records(self.directory):
            keys = {r.key for r in record.requests(self.directory)
                    if r.key in pending and r.body == pending[r.key].body}
            if keys:
                self.say(f"[openai] reattaching to batch {record.batch_id or '(not created yet)'} recorded in "
                         f"{record.path(self.directory)} ({len(keys)} of its requests are still needed)")
                found.append((record, keys))
        return found

    def _record_new(self, requests: list[BatchRequest], round_number: int) -> list[tuple[BatchRecord, list[BatchRequest]]]:
        """Record one batch per chunk of ``requests`` (requests file first, then the record)."""
        recorded = []
        for chunk in self._chunks(requests):
            record = BatchRecord(endpoint=endpoint_of(self.client), model=self.options.model, n_requests=len(chunk),
                                 round=round_number)
            record.save_requests(self.directory, chunk)
            record.save(self.directory)
            recorded.append((record, chunk))
        return recorded

    def _chunks(self, requests: list[BatchRequest]) -> list[list[BatchRequest]]:
        chunks: list[list[BatchRequest]] = []
        size = 0
        for request in requests:
            line = len(json.dumps(request.input_line(), ensure_ascii=False).encode("utf-8")) + 1
            if not chunks or len(chunks[-1]) >= self.options.batch_max_requests or size + line > MAX_INPUT_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(request)
            size += line
        return chunks

    # ------------------------------------------------------------ one batch
    def _finish(self, record: BatchRecord) -> Outcome:
        """Create the record's batch if needed, wait for it to end, collect its results."""
        requests = record.requests(self.directory)
        with api_errors(self.client):
            if record.batch_id is None:
                self._submit(record, requests)
            batch = self._poll(record)
            outcome = self._collect(batch, requests)
        record.status, record.collected = str(batch.status), True
        record.save(self.directory)
        return outcome

    def _submit(self, record: BatchRecord, requests: list[BatchRequest]) -> None:
        if record.input_file_id is None:
            data = input_bytes(requests)
            uploaded = self.client.files.create(file=(f"finetunekit-batch-{record.token}.jsonl", data),
                                                purpose="batch")
            record.input_file_id = uploaded.id
            record.save(self.directory)
            self.say(f"[openai] uploaded {len(requests)} request(s) ({len(data):,} bytes) as {uploaded.id}")
        batch, created = self._create(record)
        if created:
            self.say(f"[openai] created batch {batch.id} ({len(requests)} request(s), {record.model})")
        else:
            self.say(f"[openai] found batch {batch.id} created by an interrupted run; reattaching")
        record.batch_id, record.status = batch.id, str(batch.status)
        record.save(self.directory)

    def _create(self, record: BatchRecord) -> tuple[Any, bool]:
        """The record's batch and whether this call created it. The SDK does not retry the create
        itself: a create that timed out may have succeeded, so before each new attempt the
        batches are searched for the record's token (a paid batch is never created twice)."""
        import openai

        once = self.client.with_options(max_retries=0)
        attempts = self.options.max_retries + 1
        for attempt in range(attempts):
            batch = self._created_before(record)
            if batch is not None:
                return batch, False
            try:
                return once.batches.create(input_file_id=record.input_file_id, endpoint=BATCH_ENDPOINT,
                                           completion_window="24h", metadata={RUN_TOKEN_KEY: record.token}), True
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if attempt + 1 == attempts or (status is not None and not retryable(status, None)):
                    raise
                self.model.sleep(retry_delay(exc, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _created_before(self, record: BatchRecord) -> Any:
        """A batch carrying this record's token: created by a run killed before recording it."""
        for batch in self.client.batches.list(limit=LOOKUP_LIMIT).data:
            if (batch.metadata or {}).get(RUN_TOKEN_KEY) == record.token:
                return batch
        return None

    def _poll(self, record: BatchRecord) -> Any:
        def seen(batch: Any) -> None:
            record.status = str(batch.status)
            record.save(self.directory)

        o = self.options
        poller = BatchPoller(self.client, record.batch_id, min_interval=o.batch_poll_interval_min,
                             max_interval=o.batch_poll_interval_max, on_status=seen, say=self.say,
                             sleep=self.model.sleep)
        try:
            return poller.poll()
        except KeyboardInterrupt:
            self.model.say(f"[openai] interrupted: batch {record.batch_id} keeps running on the server; ask the same "
                           f"questions again with answer_cache_dir={str(self.cache.directory)!r} to reattach")
            raise

    def _collect(self, batch: Any, requests: list[BatchRequest]) -> Outcome:
        """Cache the answers of an ended batch; the reason for each request without one."""
        from openai.types.chat import ChatCompletion

        by_id = {request.custom_id: request for request in requests}
        outcome = Outcome(str(batch.status))
        for line in self._lines(batch.output_file_id) + self._lines(batch.error_file_id):
            request = by_id.get(str(line.get("custom_id")))
            if request is None:
                continue
            response = line.get("response") or {}
            status = response.get("status_code")
            if status == 200 and isinstance(response.get("body"), dict):
                answer = self.model.read_completion(ChatCompletion.model_validate(response["body"]))
                self.cache.put(request.cache_request, *answer)
                outcome.answers[request.key] = answer
                continue
            error = line.get("error") or (response.get("body") or {}).get("error") or {}
            outcome.failures[request.key] = LineError(
                request.custom_id, request.question, batch.id, status, error.get("code"),
                str(error.get("message") or "no error message given"))
        if batch.errors is not None and batch.errors.data:
            outcome.errors = [e.model_dump(mode="json") for e in batch.errors.data]
        for error in outcome.errors:  # a batch that failed validation names input lines (1-based)
            line = error.get("line")
            if isinstance(line, int) and 1 <= line <= len(requests):
                request = requests[line - 1]
                outcome.failures.setdefault(request.key, LineError(
                    request.custom_id, request.question, batch.id, None, error.get("code"),
                    str(error.get("message") or "no error message given")))
        return outcome

    def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        text = self.client.files.content(file_id).read().decode("utf-8", errors="replace")
        lines = []
        for number, raw in enumerate(text.splitlines(), start=1):
            try:
                line = json.loads(raw) if raw.strip() else None
            except json.JSONDecodeError:
                self.say(f"[openai] skipped line {number} of {file_id}: not JSON")
                continue
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def _missing(self, request: BatchRequest, record: BatchRecord) -> LineError:
        if record.status == "failed":
            return LineError(request.custom_id, request.question, str(record.batch_id), None, "batch_failed",
                             "the batch failed before running this request")
        return LineError(request.custom_id, request.question, str(record.batch_id), None, "missing_from_output",
                         "the batch ended without an output or error line for this request")

    def _raise_for_ended_batches(self, outcomes: list[Outcome], unanswered: list[LineError]) -> None:
        """A failed or cancelled batch ends the run (after the round's answers were cached)."""
        for status, error_type in (("failed", BatchFailedError), ("cancelled", BatchCancelledError)):
            ended = [o for o in outcomes if o.status == status]
            if not ended:
                continue
            errors = [e for o in ended for e in o.errors]
            details = "; ".join(f"line {e.get('line')}: {e.get('code')}: {e.get('message')}" for e in errors)
            message = (f"{len(ended)} batch(es) {status}{' (' + details + ')' if details else ''}; "
                       f"{len(unanswered)} request(s) unanswered, the answers received are cached")
            if error_type is BatchFailedError:
                raise BatchFailedError(message, unanswered, errors)
            raise error_type(message, unanswered)
