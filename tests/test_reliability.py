"""One test per defect of the hostile-user report (issue 14): each failed before the fix.

Lock, secrets by value, strict field types, one-line CLI errors, recovery after a failed or
interrupted training, dry-run cost with truncation, inert Markdown/CSV, and the smaller ones.
The process-level scenarios (concurrent runs, kills, planted secrets) are in test_faults.py.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import threading
import traceback
from pathlib import Path

import pytest

import finetunekit
from eval_support import FixedAnswerModel, KnowingModel, amazon_eval_sets, make_examples, product_rows
from fault_support import SRC, fake_config, openai_config
from finetunekit.cli import main
from finetunekit.data.dataset import Dataset
from finetunekit.errors import ConfigError, DataError, TemplateError
from finetunekit.pipeline import Pipeline
from finetunekit.run_lock import LOCK_NAME, RunDirBusyError, hold_run_dir
from finetunekit.testing import FakeOpenAI, fake_backend
from openai_helpers import fake_trainer
from openai_helpers import make_examples as chat_examples
from pipeline_support import make_source

KEY = "sk-reliab0123456789abcdefghijklmnopq"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_source(tmp_path_factory.mktemp("reliability-source"))


@pytest.fixture
def fake_pm(pm):
    pm.register(fake_backend)
    return pm


def fake_run_config(run_dir: Path, source: Path) -> dict:
    import tomllib

    return tomllib.loads(fake_config(run_dir, source).replace('"gated"', '"fake"'))


@pytest.fixture
def fake():
    with FakeOpenAI(api_key=KEY) as server:
        yield server


def openai_pipeline(tmp_path, source, url, monkeypatch, *, pm, fresh=False, **trainer):
    import tomllib

    monkeypatch.setenv("FAKE_KEY", KEY)
    data = tomllib.loads(openai_config(tmp_path / "run", source, url))
    data["trainer"]["options"].update(trainer)
    return Pipeline.from_config(data, plugins=pm, fresh=fresh)


# ------------------------------------------------------------------ 1. the run-directory lock

HOLDER = """
import sys, time
from finetunekit.run_lock import hold_run_dir
with hold_run_dir(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_locked_run_directory_is_refused_naming_the_holder_and_freed_by_its_kill(tmp_path, source, fake_pm):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True,
                              env={"PYTHONPATH": str(SRC)})
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirBusyError, match=rf"another finetunekit process \(pid {holder.pid}\) is using"):
            Pipeline.from_config(fake_run_config(run_dir, source), plugins=fake_pm)
    finally:
        holder.kill()
        holder.wait()
    report = Pipeline.from_config(fake_run_config(run_dir, source), plugins=fake_pm).run()  # a kill frees it
    assert len(report.summary) and not (run_dir / LOCK_NAME).exists()


def test_the_lock_is_reentrant_in_its_thread_and_refused_to_another(tmp_path):
    errors = []
    with hold_run_dir(tmp_path / "run"), hold_run_dir(tmp_path / "run"):
        thread = threading.Thread(target=lambda: errors.append(_try_hold(tmp_path / "run")))
        thread.start()
        thread.join()
    assert isinstance(errors[0], RunDirBusyError)
    assert _try_hold(tmp_path / "run") is None  # released when the outer block ends


def _try_hold(path):
    try:
        with hold_run_dir(path):
            return None
    except RunDirBusyError as exc:
        return exc


# ------------------------------------------------------------------ 2. secrets, by value

def test_a_key_under_trainer_options_is_in_no_message_cause_or_traceback(source, tmp_path, fake_pm):
    data = fake_run_config(tmp_path / "run", source)
    data["trainer"]["options"] = {"api_key": KEY}
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(data, plugins=fake_pm)
    assert "trainer.options.api_key" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert KEY not in "".join(traceback.format_exception(caught.value))


def test_a_key_pasted_into_api_key_env_is_refused_without_being_shown(source, tmp_path, fake_pm):
    data = fake_run_config(tmp_path / "run", source)
    data["trainer"] = {"name": "openai", "options": {"api_key_env": KEY}}
    with pytest.raises(ConfigError, match="api_key_env: .*name of the environment variable") as caught:
        Pipeline.from_config(data, plugins=fake_pm)
    assert KEY not in "".join(traceback.format_exception(caught.value))
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_a_variable_name_shaped_key_never_reaches_the_manifest(source, tmp_path, fake_pm):
    shaped = KEY[3:]  # no known prefix: it could be a variable's name, so it is accepted, and kept secret
    data = fake_run_config(tmp_path / "run", source)
    data["evaluation"]["base_model"] = {"name": "openai", "options": {"api_key_env": shaped}}
    Pipeline.from_config(data, plugins=fake_pm)
    text = (tmp_path / "run" / "manifest.json").read_text(encoding="utf-8")
    assert shaped not in text and "<redacted>" in text


def test_a_failed_jobs_message_quoting_the_key_is_scrubbed(fake, pm, tmp_path):
    fake.fail_next_job(message=f"key {KEY} may not fine-tune")
    with pytest.raises(finetunekit.TrainingError) as caught:
        fake_trainer(fake, pm).train(chat_examples(12), run_dir=tmp_path)
    assert "may not fine-tune" in str(caught.value) and KEY not in str(caught.value)


def test_an_option_declared_secret_is_scrubbed_and_never_shown(tmp_path):
    from finetunekit.component import ComponentOptions, option, validate_options
    from finetunekit.redaction import scrub

    class Options(ComponentOptions):
        passphrase: int = option(0, secret=True, description="a secret that is also mistyped")

    with pytest.raises(ConfigError) as caught:
        validate_options(Options, {"passphrase": "correct horse battery"}, where="x")
    assert "correct horse" not in str(caught.value) and "x.passphrase" in str(caught.value)
    assert scrub("said correct horse battery twice") == "said <redacted> twice"


# ------------------------------------------------------------------ 3. strict field types

def test_an_array_or_object_field_is_a_typed_error_or_a_counted_skip(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"title": "ok", "content": "fine"}\n{"title": ["a", "b"], "content": {"x": 1}}\n')
    with pytest.raises(DataError) as caught:
        Dataset.load(path, columns=["title", "content"]).records()
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 2, "title")
    assert "expected text or a number, got an array" in str(caught.value)
    skipped = Dataset.load(path, columns=["title", "content"], on_error="skip")
    assert skipped.records()[0]["title"] == "ok" and skipped.load_report.skipped == {"wrong_type": 1}


def test_from_records_skips_and_counts_a_record_that_is_not_a_mapping():
    dataset = Dataset.from_records([{"title": "a"}, [1, 2]], on_error="skip")
    assert len(dataset) == 1 and dataset.load_report.skipped == {"not_an_object": 1}
    with pytest.raises(DataError, match="record 1 is a list"):
        Dataset.from_records([{"title": "a"}, [1, 2]])


def test_a_template_never_renders_an_array_as_its_python_repr(pm):
    rows = Dataset.from_records([{"title": ["a", "b"], "content": {"x": 1}}])
    prompts = finetunekit.PromptGenerator("amazon-product", plugins=pm)
    with pytest.raises(TemplateError, match="field 'title' .* holds an array"):
        finetunekit.build_examples(rows, prompts, finetunekit.ResponseFormatter("{title}: {content}"))


# ------------------------------------------------------------------ 4. one-line CLI errors

def one_line_error(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("finetunekit: error: ") and "Traceback" not in err
    return err


def test_a_directory_given_as_the_config(tmp_path, capsys):
    assert "is a directory" in one_line_error(capsys, "prepare", str(tmp_path))


def test_a_config_that_is_not_utf8(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_bytes(b'run_dir = "x"\nsystem = "caf\xe9"\n')
    assert "line 2: undecodable byte 0xe9" in one_line_error(capsys, "prepare", str(path))


def test_an_unwritable_run_dir(tmp_path, source, capsys):
    (tmp_path / "file").write_text("")
    path = tmp_path / "c.toml"
    path.write_text(openai_config(tmp_path / "file" / "run", source, "http://127.0.0.1:9/v1"))
    assert "cannot create or write it" in one_line_error(capsys, "prepare", str(path))


@pytest.mark.parametrize("content", ['{"name": "another tool"}', "{not json", "[1, 2]"])
def test_a_foreign_or_corrupt_manifest(tmp_path, source, capsys, content):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text(content)
    path = tmp_path / "c.toml"
    path.write_text(openai_config(tmp_path / "run", source, "http://127.0.0.1:9/v1"))
    assert "manifest.json: not a" in one_line_error(capsys, "prepare", str(path))
    assert (tmp_path / "run" / "manifest.json").read_text() == content  # nothing deleted, even with --fresh
    assert main(["prepare", str(path), "--fresh"]) == 2


def test_prepare_with_too_few_examples_says_why_and_where_the_details_are(tmp_path, source, capsys):
    path = tmp_path / "c.toml"
    path.write_text(openai_config(tmp_path / "run", source, "http://127.0.0.1:9/v1", sample_size=10))
    err = one_line_error(capsys, "prepare", str(path))
    assert "too_few_examples" in err and "fine-tuning needs at least 10" in err
    assert str(tmp_path / "run" / "examples" / "validation.txt") in err


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path, capsys):
    assert main(["prepare", str(tmp_path), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_the_cli_sets_the_loaders_on_error(tmp_path, source, capsys):
    rows = gzip.decompress(source.read_bytes()).decode().splitlines()
    broken = tmp_path / "rows.jsonl"
    broken.write_text("\n".join(rows[:5] + ["{broken"] + rows[5:]) + "\n")
    path = tmp_path / "c.toml"
    path.write_text(openai_config(tmp_path / "run", broken, "http://127.0.0.1:9/v1"))
    assert "line 6" in one_line_error(capsys, "prepare", str(path))
    assert main(["prepare", str(path), "--on-error", "skip", "--fresh"]) == 0
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert stages["prepare"]["load_report"]["skipped"] == {"invalid_json": 1}


def test_a_mistyped_local_model_name_is_one_line_with_a_suggestion(tmp_path, source, capsys):
    pytest.importorskip("transformers")
    from pipeline_support import config_toml

    path = tmp_path / "c.toml"
    path.write_text(config_toml(tmp_path / "run", Path("smollm2-135m-instructt"), source))
    err = one_line_error(capsys, "train", str(path))
    assert "model 'smollm2-135m-instructt' not found" in err and "did you mean 'smollm2-135m-instruct'" in err


# ------------------------------------------------------------------ 5. never stuck after a failed training

def test_a_failed_job_is_retried_by_a_fixed_config_or_by_fresh(fake, source, tmp_path, pm, monkeypatch):
    fake.fail_next_job(message="The job failed.")
    with pytest.raises(finetunekit.TrainingError):
        openai_pipeline(tmp_path, source, fake.url, monkeypatch, pm=pm).train()
    with pytest.raises(finetunekit.TrainingError):  # the same config: the same (failed) job, no new one
        openai_pipeline(tmp_path, source, fake.url, monkeypatch, pm=pm).train()
    assert fake.jobs_created == 1
    tuned = openai_pipeline(tmp_path, source, fake.url, monkeypatch, pm=pm, n_epochs=2).train()  # fixed config
    assert fake.jobs_created == 2 and tuned.details["job_id"] == fake.job_ids()[1]
    fake.fail_next_job()
    with pytest.raises(finetunekit.TrainingError):
        openai_pipeline(tmp_path, source, fake.url, monkeypatch, pm=pm, fresh=True, n_epochs=3).train()
    tuned = openai_pipeline(tmp_path, source, fake.url, monkeypatch, pm=pm, fresh=True, n_epochs=3).train()
    assert fake.jobs_created == 4 and tuned.details["job_id"] == fake.job_ids()[3]


def test_fresh_over_an_interrupted_run_cancels_its_running_job_first(fake, source, tmp_path, pm, monkeypatch):
    from finetunekit.backends.openai.job import JobState

    pipeline = openai_pipeline(tmp_path, source, fake.url, monkeypatch, pm=pm)
    pipeline.prepare()
    fake.keep_next_job_running()
    client = fake.client()
    upload = client.files.create(file=("train.jsonl", b"{}\n"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=upload.id)
    JobState(base_model="gpt-4o-mini-2024-07-18", training_sha256="x", training_file_id=upload.id, job_id=job.id,
             status="running").save(tmp_path / "run" / "train")
    pipeline.manifest.data["stages"]["train"] = {"status": "running"}  # as a killed run leaves it
    pipeline.manifest.save()
    fresh = openai_pipeline(tmp_path, source, fake.url, monkeypatch, pm=pm, fresh=True)
    assert fake.job(job.id)["status"] == "cancelled"
    assert fresh.manifest.data["stages"] == {} and not (tmp_path / "run" / "train").exists()


# ------------------------------------------------------------------ 6. dry-run cost with truncation

def test_the_dry_run_bills_truncated_tokens_as_validation_does(pm, tmp_path):
    examples = chat_examples(12)
    examples[0]["messages"][1]["content"] = "word " * 300_000  # far over the 65,536-token limit
    trainer = finetunekit.get_trainer("openai", plugins=pm)
    dry = trainer.dry_run(examples, run_dir=tmp_path)
    report = trainer.check(examples)
    assert dry.billed_tokens == report.billed_tokens < 65_536 * 2 * report.epochs
    assert dry.truncated_examples == 1 and "1 truncated" in str(dry)


# ------------------------------------------------------------------ 7. inert Markdown and CSV

HOSTILE = ("![x](http://evil.example/pixel.png) [click](javascript:alert(1)) <http://evil.example> "
           "www.evil.example http://evil.example/a")


@pytest.mark.parametrize("answer", [HOSTILE, "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0",
                                    "-2+3", "@SUM(1)", "\tx", "'=quoted", "''+twice"])
def test_answers_are_inert_in_report_md_and_answers_csv(pm, tmp_path, answer):
    import markdown
    import pandas as pd

    train, test = product_rows()
    sets = amazon_eval_sets(make_examples(train, plugins=pm), test, train_dataset=train, plugins=pm)
    report = finetunekit.Evaluator(plugins=pm, progress=False).evaluate(
        {"knowing": KnowingModel(train + test), "hostile": FixedAnswerModel(answer)}, sets)
    report.save(tmp_path)
    page = markdown.markdown((tmp_path / "report.md").read_text(encoding="utf-8"), extensions=["tables"])
    assert set(re.findall(r'<img[^>]* src="([^"]*)"', page)) <= {"metrics.png", "training_loss.png"}  # our plots
    assert "<a " not in page and ("evil.example" in page) is ("evil.example" in answer)
    cells = pd.read_csv(tmp_path / "answers.csv", keep_default_na=False, dtype=str).answer
    assert not cells.str.match(r"[=+\-@\t\r]").any()
    loaded = finetunekit.EvaluationReport.load(tmp_path)
    assert set(loaded.answers.answer) >= {answer.replace("\r", "")}


def test_md_text_leaves_no_link_or_image_for_a_commonmark_renderer():
    from markdown_it import MarkdownIt

    from finetunekit.evaluation.safe_text import md_text

    html = MarkdownIt("commonmark").enable("table").render(md_text(HOSTILE))
    assert "<img" not in html and "<a " not in html


# ------------------------------------------------------------------ 8. the smaller ones

def test_a_small_truncated_gzip_names_line_1_not_0(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"title": "a", "content": "b"}\n' * 3)[:20])
    with pytest.raises(DataError, match="truncated or not valid gzip") as caught:
        Dataset.load(path).records()
    assert caught.value.line == 1 and "line 0" not in str(caught.value)


def test_a_pretty_printed_json_array_gets_the_json_lines_hint(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"title": "a", "content": "b"}], indent=2))
    with pytest.raises(DataError, match="is not JSON Lines: write one object per line"):
        Dataset.load(path).records()


def test_a_refused_request_is_not_reported_as_retried(fake, pm, tmp_path):
    fake.fail("jobs.create", status=400, message="Invalid hyperparameters")
    with pytest.raises(finetunekit.FinetunekitError) as caught:
        fake_trainer(fake, pm, max_retries=8).train(chat_examples(12), run_dir=tmp_path)
    assert "HTTP 400 (not retried)" in str(caught.value) and "after 8 retries" not in str(caught.value)
    fake.fail("chat.completions", status=400, message="Bad message")
    chat = finetunekit.get_chat_model("openai", plugins=pm, client=fake.client(), max_retries=8, progress=False)
    with pytest.raises(finetunekit.FinetunekitError, match=r"HTTP 400 \(not retried\)"):
        chat.answer(["hi"])


@pytest.mark.parametrize("route", ["files.create", "jobs.create"])
def test_a_create_whose_answer_was_lost_is_found_not_repeated(fake, pm, tmp_path, route):
    # the SDK's own retry would upload (or create the job) a second time; the trainer looks first
    fake.lose_response(route, seconds=2)
    tuned = fake_trainer(fake, pm, max_retries=2, timeout=0.5).train(chat_examples(12), run_dir=tmp_path)
    assert fake.uploads == 1 and fake.jobs_created == 1
    assert tuned.details["training_file"] == next(iter(fake.state.files))


def test_an_upload_lost_by_a_run_that_gave_up_is_reused_by_the_rerun(fake, pm, tmp_path):
    fake.lose_response("files.create", seconds=2)
    with pytest.raises(finetunekit.FinetunekitError, match="after 0 retries"):
        fake_trainer(fake, pm, max_retries=0, timeout=0.5).train(chat_examples(12), run_dir=tmp_path)
    assert fake.uploads == 1 and fake.jobs_created == 0
    fake_trainer(fake, pm).train(chat_examples(12), run_dir=tmp_path)
    assert fake.uploads == 1 and fake.jobs_created == 1
