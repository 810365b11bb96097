"""Fault and abuse: concurrent runs, SIGKILL at every stage boundary, planted secrets, corrupt input.

Runs are real ``finetunekit`` processes against the fake OpenAI server (the real SDK over HTTP
on 127.0.0.1), or with a test plugin's torch-free fake components that stop at a named point;
the training-checkpoint case trains the tiny local model. docs/reliability.md quotes what
these tests show.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fault_support import (
    cli_env,
    fake_config,
    files_text,
    finish,
    gated_site,
    kill,
    openai_config,
    run_cli,
    start_cli,
    wait_for,
)
from finetunekit.data.dataset import Dataset
from finetunekit.errors import DataError
from finetunekit.testing import FakeOpenAI
from pipeline_support import make_source

SECRET = "sk-fault0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_source(tmp_path_factory.mktemp("fault-source"))


@pytest.fixture
def fake():
    with FakeOpenAI(api_key=SECRET) as server:
        yield server


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def answered_twice(fake: FakeOpenAI) -> list[str]:
    """Chat requests the fake answered more than once (the same model and messages)."""
    seen: dict[str, int] = {}
    for request in fake.requests("chat.completions", outcome="ok"):
        key = json.dumps([request.body.get("model"), request.body.get("messages")], sort_keys=True)
        seen[key] = seen.get(key, 0) + 1
    return [key for key, n in seen.items() if n > 1]


def assert_complete_report(run_dir: Path) -> None:
    import pandas as pd

    stages = manifest(run_dir)["stages"]
    assert [stages[s]["status"] for s in ("prepare", "train", "evaluate")] == ["completed"] * 3
    answers = pd.read_csv(run_dir / "report" / "answers.csv", keep_default_na=False)
    assert not answers.duplicated(["model", "split", "item"]).any()
    assert (answers.answer != "").all() and len(answers) > 0


# ------------------------------------------------------------------ one job per run directory

def test_two_concurrent_runs_on_one_directory_make_one_upload_and_one_job(fake, source, tmp_path):
    config = write(tmp_path / "c.toml", openai_config(tmp_path / "run", source, fake.url))
    env = cli_env(FAKE_KEY=SECRET)
    fake.keep_next_job_running()  # the first run holds the directory while the second starts
    first = start_cli("run", str(config), env=env)
    try:
        wait_for(lambda: fake.count("jobs.retrieve") >= 1, first, what="the first run polling its job")
        second = run_cli("run", str(config), env=env)
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert f"another finetunekit process (pid {first.pid}) is using {tmp_path / 'run'}" in second.stderr
        fake.complete_job(fake.job_ids()[0])
        out, err = finish(first)
    finally:
        if first.poll() is None:
            kill(first)
    assert first.returncode == 0, err
    assert fake.uploads == 1 and fake.jobs_created == 1
    assert_complete_report(tmp_path / "run")


# ------------------------------------------------------------------ SIGKILL at each boundary

def _kill_at_upload(fake: FakeOpenAI) -> None:
    fake.lose_response("files.create")  # stored by the server, the id never reaches the client


def _kill_at_job_creation(fake: FakeOpenAI) -> None:
    fake.lose_response("jobs.create")  # created on the server, the id never recorded


def _kill_while_polling(fake: FakeOpenAI) -> None:
    fake.keep_next_job_running()


BOUNDARIES = {
    "upload": (_kill_at_upload, lambda f: f.count("files.create") == 1),
    "job creation": (_kill_at_job_creation, lambda f: f.count("jobs.create") == 1),
    "polling": (_kill_while_polling, lambda f: f.count("jobs.retrieve") >= 2),
    "evaluation": (lambda f: None, lambda f: f.count("chat.completions") >= 4),
}


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_run_killed_at_a_stage_boundary_reruns_to_the_end_with_nothing_lost_or_duplicated(
        fake, source, tmp_path, boundary):
    arrange, reached = BOUNDARIES[boundary]
    config = write(tmp_path / "c.toml", openai_config(tmp_path / "run", source, fake.url))
    env = cli_env(FAKE_KEY=SECRET)
    arrange(fake)
    child = start_cli("run", str(config), env=env)
    try:
        wait_for(lambda: reached(fake), child, what=f"the run reaching {boundary}")
        if boundary == "evaluation":  # let the next question hang: killed with questions unanswered
            fake.hang("chat.completions", times=None, seconds=60)
            wait_for(lambda: fake.count("chat.completions", outcome="hang") >= 1, child, what="a hung question")
    finally:
        kill(child)
    fake.clear_faults()
    killed = manifest(tmp_path / "run")["stages"]
    assert killed["prepare"]["status"] == "completed"
    assert killed[("evaluate" if boundary == "evaluation" else "train")]["status"] == "running"
    if boundary == "polling":
        fake.complete_job(fake.job_ids()[0])

    rerun = run_cli("run", str(config), env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert fake.uploads == 1 and fake.jobs_created == 1
    assert manifest(tmp_path / "run")["stages"]["prepare"] == killed["prepare"]  # not redone
    assert answered_twice(fake) == []
    assert_complete_report(tmp_path / "run")


def test_a_run_killed_during_prepare_reruns_to_the_end(source, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "check").touch()  # the trainer's data check (the end of prepare) stops for good
    config = write(tmp_path / "c.toml", fake_config(tmp_path / "run", source))
    env = cli_env(site=gated_site(tmp_path), FTK_GATE=str(gate))
    child = start_cli("run", str(config), env=env)
    try:
        wait_for(lambda: (gate / "check.reached").exists(), child, what="the data check")
    finally:
        kill(child)
    assert manifest(tmp_path / "run")["stages"]["prepare"]["status"] == "running"
    (gate / "check").unlink()
    rerun = run_cli("run", str(config), env=env)
    assert rerun.returncode == 0, rerun.stderr
    from finetunekit.testing.fake_backend import training_counts

    assert training_counts(tmp_path / "run" / "train") == {"trained": 1, "resumed": 0}
    examples = (tmp_path / "run" / "examples" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(examples) == manifest(tmp_path / "run")["stages"]["prepare"]["examples"] == 11
    assert_complete_report(tmp_path / "run")


def test_a_run_killed_after_a_training_checkpoint_resumes_from_it(source, tmp_path):
    pytest.importorskip("torch")
    from pipeline_support import config_toml, make_tiny_model

    config = write(tmp_path / "c.toml", config_toml(tmp_path / "run", make_tiny_model(tmp_path / "m"), source,
                                                    epochs=4))
    env = cli_env()
    child = start_cli("train", str(config), env=env)
    checkpoints = tmp_path / "run" / "train" / "checkpoints"
    try:
        wait_for(lambda: list(checkpoints.glob("checkpoint-*/trainer_state.json")), child, timeout=300,
                 what="the first checkpoint")
    finally:
        kill(child)
    assert manifest(tmp_path / "run")["stages"]["train"]["status"] == "running"
    rerun = run_cli("train", str(config), env=env)
    assert rerun.returncode == 0, rerun.stderr
    tuned = json.loads((tmp_path / "run" / "train" / "fine_tuned_model.json").read_text(encoding="utf-8"))
    assert "checkpoint-" in (tuned["details"].get("resumed_from") or "")
    assert manifest(tmp_path / "run")["stages"]["train"]["status"] == "completed"


# ------------------------------------------------------------------ secrets

PLANTED = {
    "key": SECRET,  # the real key: in $FAKE_KEY, sent with every request
    "option": "sk-option0123456789abcdefghijklmnop",  # api_key pasted under [trainer.options]
    "env-field": "sk-envfield0123456789abcdefghijklm",  # a key pasted into api_key_env
    "name-shaped": "namedlike0123456789abcdefghijkl",  # a key that could be a variable's name
}


def test_a_planted_secret_is_in_no_file_of_the_run_and_no_output(fake, source, tmp_path):
    runs = tmp_path / "runs"
    env = cli_env(FAKE_KEY=SECRET)
    outputs: list[str] = []

    def finetunekit(case: str, *, debug: str, trainer: str = "", key_env: str = "FAKE_KEY", expect: int,
                    says: str) -> None:
        config = openai_config(runs / case, source, fake.url, trainer=trainer, key_env=key_env)
        path = write(tmp_path / f"{case}.toml", config)
        args = {"before": ["--debug", "run", str(path)], "after": ["run", str(path), "--debug"],
                "none": ["run", str(path)]}[debug]
        result = run_cli(*args, env=env)
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode == expect, result.stderr
        assert says in result.stderr
        if expect == 2:  # --debug shows the traceback (scrubbed); the error itself is one line, the last
            assert ("Traceback" in result.stderr) is (debug != "none")
            assert result.stderr.splitlines()[-1].startswith("finetunekit: error: ")

    for debug in ("none", "after"):
        finetunekit(f"option-{debug}", debug=debug, trainer=f'api_key = "{PLANTED["option"]}"', expect=2,
                    says="trainer.options.api_key")
        finetunekit(f"env-field-{debug}", debug=debug, key_env=PLANTED["env-field"], expect=2, says="api_key_env")
    fake.fail_next_job(message=f"The job failed: key {SECRET} is not allowed to fine-tune")
    finetunekit("failed-job", debug="before", expect=2, says="failed")
    fake.fail("jobs.create", status=400, message=f"Invalid request from key {SECRET}")
    finetunekit("refused-request", debug="none", expect=2, says="HTTP 400 (not retried)")
    finetunekit("name-shaped", debug="before", key_env=PLANTED["name-shaped"], expect=2, says="HTTP 401 (not retried)")
    finetunekit("complete", debug="after", expect=0, says="")

    written = {f"{case}/{name}": text for case in os.listdir(runs) for name, text in files_text(runs / case).items()}
    assert any(name.endswith("manifest.json") for name in written) and len(written) > 30
    for label, secret in PLANTED.items():
        assert [name for name, text in written.items() if secret in text] == [], label
        assert [i for i, text in enumerate(outputs) if secret in text] == [], label
    assert "<redacted>" in written["failed-job/manifest.json"]


# ------------------------------------------------------------------ corrupt input

def _load(data: bytes, suffix: str, on_error: str) -> Dataset | DataError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"rows{suffix}"
        path.write_bytes(data)
        try:
            dataset = Dataset.load(path, columns=["title", "content"], on_error=on_error, progress=False)
            dataset.records()
        except DataError as exc:
            return exc
        return dataset


def _accounted(result: Dataset | DataError, on_error: str) -> None:
    """A typed error (never with on_error="skip" for a record's fault), or every record counted."""
    if isinstance(result, DataError):
        assert str(result) and result.path is not None
        return
    report = result.load_report
    assert report.complete and report.rows == len(result)
    if on_error == "raise":
        assert report.skipped_total == 0


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["title", "content", "x"]), inner,
                                                                max_size=3),
    max_leaves=6,
)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".csv", ".jsonl.gz", ".csv.gz", ".parquet"]),
       on_error=st.sampled_from(["raise", "skip"]), gzip_magic=st.booleans())
def test_random_bytes_give_a_typed_error_or_counted_skips(data, suffix, on_error, gzip_magic):
    if gzip_magic:
        data = b"\x1f\x8b" + data
    _accounted(_load(data, suffix, on_error), on_error)


@FUZZ
@given(values=st.lists(JSON_VALUES, min_size=1, max_size=8), cut=st.integers(min_value=0, max_value=400),
       on_error=st.sampled_from(["raise", "skip"]))
def test_truncated_gzip_of_random_json_lines_gives_a_typed_error_or_counted_skips(values, cut, on_error):
    data = gzip.compress("".join(json.dumps(v) + "\n" for v in values).encode())
    result = _load(data[: min(cut, len(data))], ".jsonl.gz", on_error)
    _accounted(result, on_error)
    if isinstance(result, DataError) and "gzip" in str(result):
        assert result.line is not None and result.line >= 1


@FUZZ
@given(values=st.lists(JSON_VALUES, max_size=8), on_error=st.sampled_from(["raise", "skip"]))
def test_random_json_values_give_a_typed_error_or_counted_skips(values, on_error):
    lines = "".join(json.dumps(v) + "\n" for v in values).encode()
    _accounted(_load(lines, ".jsonl", on_error), on_error)
    try:
        dataset = Dataset.from_records(values, columns=["title", "content"], on_error=on_error)
    except DataError:
        assert on_error == "raise"
        return
    report = dataset.load_report
    assert len(dataset) + report.skipped_total == len(values)
    assert all(isinstance(row["title"], (str, int, float, bool, type(None))) for row in dataset)


def test_fuzzing_sees_both_outcomes():
    """The corrupt-input strategies reach both a typed error and a clean load (they test something)."""
    broken = _load(gzip.compress(b'{"title": "a", "content": "b"}\n' * 50)[:40], ".jsonl.gz", "skip")
    assert isinstance(broken, DataError) and broken.line == 1
    fine = _load(b'{"title": "a", "content": "b"}\n[1]\n{"title": ["x"], "content": "c"}\n', ".jsonl", "skip")
    assert isinstance(fine, Dataset) and fine.load_report.skipped == {"not_an_object": 1, "wrong_type": 1}
