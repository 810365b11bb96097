"""A training process killed mid-poll: the rerun reattaches (one upload, one job in total)."""

from __future__ import annotations

import json

import pytest

from finetunekit.errors import ConfigError
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from finetunekit.backends.openai.job import STATE_FILE
from openai_helpers import fake_trainer, kill_child_once_polling, make_examples

CHILD = """
import json, sys
from finetunekit.registry import get_trainer
from finetunekit.plugins import create_plugin_manager
examples = json.loads(sys.argv[3])
trainer = get_trainer("openai", plugins=create_plugin_manager(False), base_url=sys.argv[1],
                      api_key_env="FAKE_KEY", poll_interval_min=0.01, poll_interval_max=0.02)
trainer.train(examples, run_dir=sys.argv[2])
"""


def test_kill_mid_poll_then_rerun_reattaches(fake_openai, pm, tmp_path):
    fake_openai.keep_next_job_running()
    kill_child_once_polling(fake_openai, CHILD, [fake_openai.url, str(tmp_path), json.dumps(make_examples(12))],
                            "jobs.retrieve")
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["job_id"] == fake_openai.job_ids()[0] and state["status"] == "running"

    fake_openai.complete_job(state["job_id"])
    tuned = fake_trainer(fake_openai, pm).train(make_examples(12), run_dir=tmp_path)
    assert tuned.details["job_id"] == state["job_id"]
    assert fake_openai.uploads == 1 and fake_openai.jobs_created == 1


def test_refused_rerun_keeps_the_files_that_were_uploaded(fake_openai, pm, tmp_path):
    fake_trainer(fake_openai, pm).train(make_examples(12), make_examples(10, "Valid"), run_dir=tmp_path)
    uploaded = {name: (tmp_path / name).read_bytes() for name in ("train.jsonl", "validation.jsonl")}
    with pytest.raises(ConfigError, match="other examples"):
        fake_trainer(fake_openai, pm).train(make_examples(13), make_examples(10, "Valid"), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="other examples"):
        fake_trainer(fake_openai, pm).train(make_examples(12), make_examples(11, "Valid"), run_dir=tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in uploaded} == uploaded
    assert fake_openai.uploads == 2 and fake_openai.jobs_created == 1


@pytest.mark.parametrize(("option", "value"), [
    ("model", "gpt-4.1-mini-2025-04-14"), ("n_epochs", 3), ("batch_size", 4),
    ("learning_rate_multiplier", 0.5), ("suffix", "other"), ("seed", 8), ("metadata", {"team": "x"}),
    ("client", None),  # the same examples sent to another endpoint
])
def test_rerun_with_other_job_options_is_refused_naming_them(fake_openai, pm, tmp_path, monkeypatch, option, value):
    fake_trainer(fake_openai, pm, seed=7).train(make_examples(12), run_dir=tmp_path)
    sent = fake_openai.count(outcome=None)
    changed = {"seed": 7, "max_retries": 0, option: value}
    if option == "client":
        monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
        changed["base_url"] = "http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError) as caught:
        fake_trainer(fake_openai, pm, **changed).train(make_examples(12), run_dir=tmp_path)
    message = str(caught.value)
    assert ("endpoint" if option == "client" else option) in message and "run_dir" in message
    assert fake_openai.count(outcome=None) == sent  # refused before any request


def test_rerun_with_the_same_job_options_reattaches(fake_openai, pm, tmp_path, monkeypatch):
    tuned = fake_trainer(fake_openai, pm, n_epochs=2, learning_rate_multiplier=1).train(make_examples(12),
                                                                                     run_dir=tmp_path)
    monkeypatch.setenv("FAKE_KEY", fake_openai.api_key)
    again = fake_trainer(fake_openai, pm, n_epochs=2, learning_rate_multiplier=1.0, client=None,
                         base_url=fake_openai.url, api_key_env="FAKE_KEY", max_retries=1, poll_interval_max=1)
    assert again.train(make_examples(12), run_dir=tmp_path).model == tuned.model
    assert fake_openai.jobs_created == 1
