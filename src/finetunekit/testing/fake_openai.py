"""``FakeOpenAI``: a stateful fake of the OpenAI API over real HTTP on 127.0.0.1.

Tests point a real ``openai.OpenAI`` client at it::

    with FakeOpenAI() as fake:
        client = fake.client(max_retries=3, timeout=5)
        fake.rate_limit("chat.completions", times=2, retry_after=0.01)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert fake.count("chat.completions", outcome="fault:429") == 2

Jobs advance one status per ``jobs.retrieve``, batches one per ``batches.retrieve`` (or only
through :meth:`FakeOpenAI.advance` with ``advance="manual"``). Faults, job and batch outcomes
and the request log are described in :mod:`finetunekit.testing.fake_faults`,
:mod:`finetunekit.testing.fake_jobs` and :mod:`finetunekit.testing.fake_batches`.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any, Sequence

from finetunekit.testing.fake_batches import BatchPlan, LineFailure
from finetunekit.testing.fake_faults import FaultRule, FaultScript, LoggedRequest, RequestLog
from finetunekit.testing.fake_http import FakeOpenAIHandler
from finetunekit.testing.fake_jobs import JobPlan
from finetunekit.testing.fake_state import ApiError, FakeAPIState

DEFAULT_API_KEY = "sk-fake-0123456789abcdefSECRET"


class FakeOpenAI:
    """A fake OpenAI API server in a background thread; a context manager.

    :param api_key: the key clients must send (``None``: accept any request).
    :param latency: seconds every request waits before it is answered.
    :param advance: ``"poll"`` (each job retrieval advances the job) or ``"manual"``.
    :param results_base64: serve result-metrics files base64-encoded, as OpenAI does.
    """

    def __init__(self, *, api_key: str | None = DEFAULT_API_KEY, latency: float = 0.0,
                 advance: str = "poll", results_base64: bool = True) -> None:
        if advance not in ("poll", "manual"):
            raise ValueError(f"advance must be 'poll' or 'manual', got {advance!r}")
        self.api_key = api_key
        self.latency = latency
        self.state = FakeAPIState(advance_on_poll=advance == "poll", results_base64=results_base64)
        self.faults = FaultScript()
        self.log = RequestLog()
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle
    def start(self) -> FakeOpenAI:
        """Listen on an ephemeral port of 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        self.stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAIHandler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (hung requests are released) and close the socket."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>`` (an Azure OpenAI endpoint points here)."""
        if self._server is None:
            raise RuntimeError("the fake server is not running; call start() or use it in a with block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI``: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.root}/v1"

    def client(self, *, max_retries: int = 2, timeout: float = 10.0, strict: bool = True, **kwargs: Any) -> Any:
        """A real ``openai.OpenAI`` client for this server.

        ``strict`` makes the SDK validate every response against its types.
        """
        import openai

        return openai.OpenAI(api_key=self.api_key or "unused", base_url=self.url, max_retries=max_retries,
                             timeout=timeout, _strict_response_validation=strict, **kwargs)

    # ---------------------------------------------------------------- faults
    def fail(self, route: str = "*", *, status: int = 500, times: int | None = 1,
             retry_after: float | None = None, message: str | None = None) -> FaultRule:
        """Answer the next ``times`` requests of ``route`` with HTTP ``status``."""
        rule = FaultRule(route, status=status, times=times, retry_after=retry_after)
        if message:
            rule.message = message
        return self.faults.add(rule)

    def rate_limit(self, route: str = "*", *, times: int | None = 1, retry_after: float = 0.01) -> FaultRule:
        """Answer the next ``times`` requests of ``route`` with 429 and ``Retry-After``."""
        return self.faults.add(FaultRule(route, status=429, times=times, retry_after=retry_after))

    def hang(self, route: str = "*", *, times: int | None = 1, seconds: float = 30.0) -> FaultRule:
        """Let the next ``times`` requests of ``route`` hang ``seconds``, then drop them."""
        return self.faults.add(FaultRule(route, kind="hang", times=times, hang_seconds=seconds))

    def lose_response(self, route: str = "*", *, times: int | None = 1, seconds: float = 30.0) -> FaultRule:
        """Carry out the next ``times`` requests of ``route`` (an upload is stored, a job created),
        then hang ``seconds`` without answering: what a client killed mid-request leaves behind."""
        return self.faults.add(FaultRule(route, kind="lose_response", times=times, hang_seconds=seconds))

    def fail_randomly(self, route: str = "*", *, rate: float = 0.3, statuses: Sequence[int] = (500, 429),
                      seed: int = 0, retry_after: float | None = 0.01) -> FaultRule:
        """Fail each request of ``route`` with chance ``rate``, status drawn from ``statuses``."""
        return self.faults.add(FaultRule(route, times=None, rate=rate, statuses=tuple(statuses),
                                         seed=seed, retry_after=retry_after))

    def clear_faults(self) -> None:
        """Remove every scripted fault."""
        self.faults.clear()

    # ------------------------------------------------------------------ chat
    def script_logprobs(self, logprobs: dict[str, float]) -> None:
        """Answer with these log-probabilities for these tokens (keys: the token without its
        leading space) when a chat request asks for ``logprobs``; others keep their hashed value."""
        with self.state.lock:
            self.state.token_logprobs.update(logprobs)

    # ------------------------------------------------------------------ jobs
    def plan_next_job(self, plan: JobPlan) -> None:
        """The next created job follows ``plan`` (plans queue up in order)."""
        with self.state.lock:
            self.state.next_plans.append(plan)

    def fail_next_job(self, code: str = "invalid_training_file", message: str = "The job failed.",
                      param: str | None = "training_file") -> None:
        """The next job ends ``failed`` with this error object."""
        self.plan_next_job(JobPlan.fail(code, message, param))

    def cancel_next_job(self) -> None:
        """The next job ends ``cancelled``."""
        self.plan_next_job(JobPlan.cancelled())

    def keep_next_job_running(self) -> None:
        """The next job stays ``running`` until cancelled or :meth:`complete_job` is called."""
        self.plan_next_job(JobPlan.stay_running())

    def next_job_with_unknown_status(self, status: str = "paused_for_review") -> None:
        """The next job passes through the status ``status`` unknown to the SDK, then succeeds."""
        self.plan_next_job(JobPlan.with_unknown_status(status))

    def advance(self, job_id: str | None = None, steps: int = 1) -> None:
        """Move one job (default: all jobs and batches) ``steps`` statuses along its plan."""
        self.state.advance(job_id, steps)
        if job_id is None:
            with self.state.lock:
                for batch in list(self.state.batches.batches.values()):
                    for _ in range(steps):
                        self.state.batches.step(batch)

    def complete_job(self, job_id: str, status: str = "succeeded") -> None:
        """Force ``job_id`` into the terminal ``status`` now."""
        self.state.complete_job(job_id, status)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as the API shows it (without advancing it)."""
        with self.state.lock:
            return self.state.job(job_id).to_api()

    def job_ids(self) -> list[str]:
        """Ids of every job created, oldest first."""
        with self.state.lock:
            return list(self.state.jobs)

    def file_bytes(self, file_id: str) -> bytes:
        """The stored bytes of an uploaded (or result) file."""
        return self.state.file_content(file_id)

    # --------------------------------------------------------------- batches
    def plan_next_batch(self, plan: BatchPlan) -> None:
        """The next created batch follows ``plan`` (plans queue up in order)."""
        with self.state.lock:
            self.state.batches.next_plans.append(plan)

    def slow_next_batch(self, polls: int) -> None:
        """The next batch stays ``in_progress`` for ``polls`` retrievals, then completes."""
        self.plan_next_batch(BatchPlan(polls_in_progress=polls))

    def keep_next_batch_running(self) -> None:
        """The next batch stays ``in_progress`` until :meth:`complete_batch` (or a cancel)."""
        self.plan_next_batch(BatchPlan(polls_in_progress=None))

    def expire_next_batch(self, answered: int = 0) -> None:
        """The next batch ``expired``: its first ``answered`` lines ran, the rest did not
        (``batch_expired`` in the error file)."""
        self.plan_next_batch(BatchPlan(outcome="expired", answered=answered))

    def cancel_next_batch(self, answered: int = 0) -> None:
        """The next batch ends ``cancelled`` (on the provider's side) after ``answered`` lines."""
        self.plan_next_batch(BatchPlan(outcome="cancelled", answered=answered))

    def fail_next_batch(self, code: str = "invalid_request", message: str = "The batch input file is invalid.",
                        line: int | None = None) -> None:
        """The next batch ends ``failed`` (validation), with this ``errors.data`` entry."""
        self.plan_next_batch(BatchPlan(outcome="failed", error={"code": code, "message": message, "line": line}))

    def fail_next_batch_lines(self, failures: dict[int, LineFailure | int]) -> None:
        """The next batch completes, but these input lines (0-based) fail: a :class:`LineFailure`,
        or an HTTP status answered with a generic error."""
        plan = {index: f if isinstance(f, LineFailure) else LineFailure(
            f, "server_error" if f >= 500 else "invalid_request", f"The fake failed this request with {f}.")
            for index, f in failures.items()}
        self.plan_next_batch(BatchPlan(failed_lines=plan))

    def complete_batch(self, batch_id: str, outcome: str = "completed") -> None:
        """End ``batch_id`` with ``outcome`` now (its lines run as its plan says)."""
        self.state.batches.finish(batch_id, outcome)

    def batch(self, batch_id: str) -> dict[str, Any]:
        """The batch as the API shows it (without advancing it)."""
        with self.state.lock:
            return self.state.batches.get(batch_id).to_api()

    def batch_ids(self) -> list[str]:
        """Ids of every batch created, oldest first."""
        with self.state.lock:
            return list(self.state.batches.batches)

    def batch_input(self, batch_id: str) -> list[dict[str, Any]]:
        """The request lines of a batch's input file."""
        with self.state.lock:
            return list(self.state.batches.inputs[batch_id])

    @property
    def batches_created(self) -> int:
        """Successfully created batches."""
        return self.count("batches.create")

    @property
    def batch_lines_run(self) -> int:
        """Chat completions answered inside batches (each batch line that ran)."""
        return self.state.batches.lines_run

    # ------------------------------------------------------------------- log
    def count(self, route: str | None = None, outcome: str | None = "ok") -> int:
        """Requests of ``route`` that ended with ``outcome`` (``None``: any outcome)."""
        return self.log.count(route, outcome)

    def requests(self, route: str | None = None, outcome: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally filtered."""
        return self.log.entries(route, outcome)

    @property
    def uploads(self) -> int:
        """Successful file uploads."""
        return self.count("files.create")

    @property
    def jobs_created(self) -> int:
        """Successfully created fine-tuning jobs."""
        return self.count("jobs.create")

    @property
    def chat_requests(self) -> int:
        """Chat-completion requests of any outcome (faults included)."""
        return self.count("chat.completions", outcome=None)

    # -------------------------------------------------------------- dispatch
    def dispatch(self, route: str, params: dict[str, str], body: Any, query: dict[str, list[str]]) -> Any:
        """Answer one routed request from the state (raises :class:`ApiError`)."""
        after = (query.get("after") or [None])[0]
        limit = int((query.get("limit") or ["20"])[0])
        state = self.state
        if route == "files.create":
            if not isinstance(body, dict) or not isinstance(body.get("file"), tuple):
                raise ApiError(400, "A multipart 'file' field is required.", param="file")
            filename, data = body["file"]
            return state.create_file(filename or "upload", str(body.get("purpose", "")), data)
        if route == "files.list":
            return state.list_files(after, limit, (query.get("purpose") or [None])[0])
        if route == "files.retrieve":
            return state.retrieve_file(params["id"])
        if route == "files.content":
            return state.file_content(params["id"])
        if route == "jobs.create":
            return state.create_job(body if isinstance(body, dict) else {})
        if route == "jobs.list":
            metadata = {key[len("metadata["):-1]: values[0] for key, values in query.items()
                        if key.startswith("metadata[")}
            return state.list_jobs(after, limit, metadata)
        if route == "jobs.retrieve":
            return state.retrieve_job(params["id"])
        if route == "jobs.cancel":
            return state.cancel_job(params["id"])
        if route == "jobs.events":
            return state.job_events(params["id"], after, limit)
        if route == "jobs.checkpoints":
            return state.job_checkpoints(params["id"], after, limit)
        if route == "chat.completions":
            return state.chat_completion(body if isinstance(body, dict) else {})
        if route.startswith("batches."):
            return self._dispatch_batch(route, params, body, after, limit)
        if route == "models.list":
            return {"object": "list", "data": [
                {"id": model, "object": "model", "created": state.clock, "owned_by": "fake-org"}
                for model in state.answers]}
        raise ApiError(404, f"Unknown route {route}")

    def _dispatch_batch(self, route: str, params: dict[str, str], body: Any, after: str | None, limit: int) -> Any:
        batches = self.state.batches
        if route == "batches.create":
            return batches.create(body if isinstance(body, dict) else {})
        if route == "batches.list":
            return batches.list(after, limit)
        if route == "batches.retrieve":
            return batches.retrieve(params["id"])
        return batches.cancel(params["id"])
