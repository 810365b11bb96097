"""A process killed (SIGKILL) while waiting for its batch: the rerun reattaches, one batch in total."""

from __future__ import annotations

import json

from finetunekit.backends.openai.batch_state import BatchRecord
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from openai_helpers import fake_batch_chat, kill_child_once_polling

CHILD = """
import sys
from finetunekit.registry import get_chat_model
from finetunekit.plugins import create_plugin_manager
chat = get_chat_model("openai", plugins=create_plugin_manager(False), base_url=sys.argv[1], api_key_env="FAKE_KEY",
                      batch=True, answer_cache_dir=sys.argv[2], batch_poll_interval_min=0.01,
                      batch_poll_interval_max=0.02, progress=False)
chat.answer([f"Question number {i}?" for i in range(int(sys.argv[3]))])
"""


def test_kill_after_submission_then_rerun_reattaches_to_the_one_batch(fake_openai, pm, tmp_path):
    fake_openai.keep_next_batch_running()
    cache = tmp_path / "cache"
    kill_child_once_polling(fake_openai, CHILD, [fake_openai.url, str(cache), "50"], "batches.retrieve")
    [record_path] = BatchRecord.directory(cache).glob("*.json")
    record = json.loads(record_path.read_text())
    [batch_id] = fake_openai.batch_ids()
    assert record["batch_id"] == batch_id and record["status"] == "in_progress" and not record["collected"]
    assert fake_openai.api_key not in record_path.read_text()

    fake_openai.complete_batch(batch_id)
    questions = [f"Question number {i}?" for i in range(50)]
    answers = fake_batch_chat(fake_openai, pm, cache).answer(questions)
    assert answers == [f"As a general assistant I know little about this: {q}" for q in questions]
    assert fake_openai.batches_created == 1 and fake_openai.uploads == 1 and fake_openai.chat_requests == 0
