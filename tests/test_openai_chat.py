"""ChatModel "openai" driven through the real SDK over HTTP against the fake server."""

from __future__ import annotations

import collections
import json

import pytest

from finetunekit.errors import ConfigError
from finetunekit.backends.openai.chat import ChatRequestError
from finetunekit.registry import get_chat_model
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from openai_helpers import fake_chat


def _questions(n: int) -> list[str]:
    return [f"Question number {i}?" for i in range(n)]


def _expected(question: str, model: str = "gpt-4o-mini") -> str:
    return f"As a general assistant I know little about this: {question}"


def test_30_percent_failures_all_200_answered_in_order_each_once_then_cache_sends_nothing(
        fake_openai, pm, tmp_path):
    fake_openai.fail_randomly("chat.completions", rate=0.3, statuses=(500, 429), seed=1, retry_after=0.005)
    chat = fake_chat(fake_openai, pm, concurrency=16, max_retries=20, answer_cache_dir=str(tmp_path / "cache"))
    questions = _questions(200)

    answers = chat.answer(questions)

    assert answers == [_expected(q) for q in questions]
    faults = fake_openai.count("chat.completions", outcome=None) - fake_openai.count("chat.completions")
    assert 40 <= faults, "the fault script must really have failed about 30 % of the requests"
    succeeded = collections.Counter(r.body["messages"][0]["content"]
                                    for r in fake_openai.requests("chat.completions", outcome="ok"))
    assert succeeded == {q: 1 for q in questions}

    before = fake_openai.count("chat.completions", outcome=None)
    again = fake_chat(fake_openai, pm, concurrency=16, answer_cache_dir=str(tmp_path / "cache"))
    assert again.answer(questions) == answers
    assert fake_openai.count("chat.completions", outcome=None) == before


def test_cache_after_a_partial_run_sends_only_the_missing(fake_openai, pm, tmp_path):
    cache = str(tmp_path / "cache")
    fake_chat(fake_openai, pm, answer_cache_dir=cache).answer(_questions(30)[:10])
    fake_openai.log.clear()
    answers = fake_chat(fake_openai, pm, answer_cache_dir=cache).answer(_questions(30))
    assert answers == [_expected(q) for q in _questions(30)]
    sent = sorted(r.body["messages"][0]["content"] for r in fake_openai.requests("chat.completions"))
    assert sent == sorted(_questions(30)[10:])


def test_options_are_sent_and_change_the_cache_key(fake_openai, pm, tmp_path):
    cache = str(tmp_path / "cache")
    fake_chat(fake_openai, pm, answer_cache_dir=cache, temperature=0.0, seed=1).answer(["hi"])
    fake_chat(fake_openai, pm, answer_cache_dir=cache, temperature=0.7, seed=1).answer(["hi"])
    fake_chat(fake_openai, pm, answer_cache_dir=cache, temperature=0.7, seed=1).answer(["hi"])
    bodies = [r.body for r in fake_openai.requests("chat.completions")]
    assert len(bodies) == 2
    assert [b["temperature"] for b in bodies] == [0.0, 0.7] and all(b["seed"] == 1 for b in bodies)
    assert bodies[0]["max_tokens"] == 512


def test_identical_conversations_are_sent_once_and_answered_everywhere(fake_openai, pm):
    chat = fake_chat(fake_openai, pm)
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Same?"}]
    answers = chat.answer([conversation, "Other?", conversation])
    assert answers[0] == answers[2] == _expected("Same?") and answers[1] == _expected("Other?")
    assert fake_openai.count("chat.completions") == 2


def test_hang_past_timeout_is_retried(fake_openai, pm):
    fake_openai.hang("chat.completions", times=1, seconds=5)
    chat = fake_chat(fake_openai, pm, timeout=0.3, max_retries=2)
    assert chat.answer(["slow?"]) == [_expected("slow?")]
    assert fake_openai.count("chat.completions", "hang") == 1


def test_exhausted_retries_raise_typed_error_and_keep_what_was_answered(fake_openai, pm, tmp_path):
    cache = str(tmp_path / "cache")
    fake_chat(fake_openai, pm, answer_cache_dir=cache).answer(["kept"])
    fake_openai.fail("chat.completions", status=500, times=None, retry_after=0.001, message="down for good")
    with pytest.raises(ChatRequestError, match="down for good") as caught:
        fake_chat(fake_openai, pm, answer_cache_dir=cache, max_retries=1, concurrency=1).answer(["kept", "lost"])
    assert caught.value.failures == 1 and fake_openai.api_key not in str(caught.value)
    fake_openai.clear_faults()
    assert fake_chat(fake_openai, pm, answer_cache_dir=cache).answer(["kept", "lost"]) == [
        _expected("kept"), _expected("lost")]


def test_unknown_fine_tuned_model_is_an_error_with_the_api_message(fake_openai, pm):
    chat = fake_chat(fake_openai, pm, model="ft:gpt-4o-mini:fake-org::nope")
    with pytest.raises(ChatRequestError, match="does not exist"):
        chat.answer(["hi"])


def test_base_url_and_key_from_environment(fake_openai, pm, monkeypatch):
    monkeypatch.setenv("MY_KEY", fake_openai.api_key)
    chat = get_chat_model("openai", plugins=pm, base_url=fake_openai.url, api_key_env="MY_KEY", progress=False)
    assert chat.answer(["env?"]) == [_expected("env?")]
    assert fake_openai.api_key not in repr(chat) and fake_openai.api_key not in json.dumps(
        chat.options.model_dump(mode="json"))


def test_missing_key_without_base_url_is_a_config_error(pm, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    chat = get_chat_model("openai", plugins=pm, api_key_env="NO_SUCH_KEY_VAR", progress=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        chat.answer(["hi"])


def test_client_option_rejects_non_clients(pm):
    with pytest.raises(ConfigError, match="client"):
        get_chat_model("openai", plugins=pm, client="sk-not-a-client")


def test_azure_openai_client_works(fake_openai, pm):
    import openai

    azure = openai.AzureOpenAI(azure_endpoint=fake_openai.root, api_key=fake_openai.api_key,
                               api_version="2024-10-21")
    chat = get_chat_model("openai", plugins=pm, client=azure, model="my-deployment", progress=False)
    assert chat.answer(["azure?"]) == [_expected("azure?")]
    assert fake_openai.requests("chat.completions")[0].path == "/openai/deployments/my-deployment/chat/completions"


def test_fully_cached_rerun_needs_no_api_key_and_sends_nothing(fake_openai, pm, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    monkeypatch.setenv("MY_KEY", fake_openai.api_key)
    options = {"api_key_env": "MY_KEY", "answer_cache_dir": cache, "progress": False}
    questions = _questions(5)
    first = get_chat_model("openai", plugins=pm, **options).answer(questions)
    assert first == [_expected(q) for q in questions]
    monkeypatch.delenv("MY_KEY")
    sent = fake_openai.count("chat.completions", outcome=None)
    assert get_chat_model("openai", plugins=pm, **options).answer(questions) == first
    assert fake_openai.count("chat.completions", outcome=None) == sent
    with pytest.raises(ConfigError, match="MY_KEY"):  # what is not cached still needs the key
        get_chat_model("openai", plugins=pm, **options).answer(["not cached?"])


@pytest.mark.parametrize("base_url", [None, "http://127.0.0.1:8000/v1", "http://Example.COM/v1/", "https://h/a/b"])
def test_endpoint_from_options_equals_the_built_clients(base_url, monkeypatch):
    from finetunekit.backends.openai.client import OpenAIConnectionOptions, build_client, endpoint_of, endpoint_of_options

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("SOME_KEY", "sk-x")
    options = OpenAIConnectionOptions(base_url=base_url, api_key_env="SOME_KEY")
    assert endpoint_of_options(options) == endpoint_of(build_client(options))
