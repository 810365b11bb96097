"""`finetunekit serve` in a subprocess, talked to with the real openai SDK over 127.0.0.1:
batched answers equal to direct greedy generation, streaming, OpenAI-style errors, API key,
and a pipeline evaluation through the `openai` chat model."""

from __future__ import annotations

import concurrent.futures
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from finetunekit.registry import get_chat_model  # noqa: E402
from pipeline_support import config_toml, make_source, make_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV, KEY = "FINETUNEKIT_TEST_SERVE_KEY", "test-key-123"
MODEL_ID = "tiny-served"
QUESTIONS = [f"Tell me about product number {i} from Amazon, the {c} one." for i, c in
             zip(range(32), ["red", "blue", "green", "old", "new", "big", "small", "cheap"] * 4)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("serve-model"))


@pytest.fixture(scope="module")
def server(tiny_model):
    """The server process and its base URL (``…/v1``)."""
    env = {**os.environ, KEY_ENV: KEY, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "finetunekit.cli", "serve", str(tiny_model), "--port", "0", "--device", "cpu",
         "--model-name", MODEL_ID, "--api-key-env", KEY_ENV, "--max-wait-ms", "20", "--max-request-bytes", "20000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=120)
    except queue.Empty:
        process.kill()
        pytest.fail(f"the server printed nothing: {process.stderr.read()}")
    assert line.startswith(f"finetunekit: serving {MODEL_ID} at http://127.0.0.1:"), line
    yield process, line.split(" at ")[1].strip()
    process.terminate()
    process.wait(timeout=30)


def client(url, key=KEY):
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)


def health(url):
    import httpx2

    return httpx2.get(url.removesuffix("/v1") + "/health").json()


def direct_answers(tiny_model, questions, max_new_tokens):
    """The same questions answered by the local chat model in this process (greedy)."""
    model = get_chat_model("local", model=str(tiny_model), device="cpu", max_new_tokens=max_new_tokens, progress=False)
    return model.answer(questions)


def ask(api, question, **options):
    return api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": question}],
                                       temperature=0, **options)


def test_32_concurrent_requests_are_answered_as_direct_generation_in_fewer_generate_calls(server, tiny_model):
    _, url = server
    api = client(url)
    before = health(url)["generate_calls"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda q: ask(api, q, max_tokens=10), QUESTIONS))
    calls = health(url)["generate_calls"] - before
    answers = [r.choices[0].message.content for r in responses]
    assert answers == direct_answers(tiny_model, QUESTIONS, 10)
    assert len(set(answers)) > 1  # different questions, different answers: order is checked
    assert 1 <= calls < len(QUESTIONS)
    first = responses[0]
    assert first.model == MODEL_ID and first.choices[0].finish_reason in ("stop", "length")
    assert 1 <= first.usage.completion_tokens <= 10 and first.usage.prompt_tokens > 10


def test_shorter_max_tokens_in_the_same_batch_gets_a_prefix(server, tiny_model):
    _, url = server
    api = client(url)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        long, short = pool.map(lambda n: ask(api, QUESTIONS[0], max_tokens=n), [12, 3])
    assert long.choices[0].message.content == direct_answers(tiny_model, QUESTIONS[:1], 12)[0]
    assert short.choices[0].message.content == direct_answers(tiny_model, QUESTIONS[:1], 3)[0]
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3


def test_streaming_sends_pieces_that_join_to_the_answer(server):
    _, url = server
    api = client(url)
    plain = ask(api, QUESTIONS[1], max_tokens=12).choices[0].message.content
    chunks = list(ask(api, QUESTIONS[1], max_tokens=12, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1
    assert "".join(pieces) == plain
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= len(pieces)


def test_sampling_with_a_seed_is_reproducible(server):
    _, url = server
    api = client(url)
    answers = [api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTIONS[2]}],
                                           temperature=1.0, seed=7, max_tokens=8).choices[0].message.content
               for _ in range(2)]
    assert answers[0] == answers[1]
    assert answers[0] != ask(api, QUESTIONS[2], max_tokens=8).choices[0].message.content


def test_bad_requests_get_openai_style_errors_and_the_server_keeps_serving(server):
    import httpx2

    process, url = server
    api = client(url)
    with pytest.raises(openai.BadRequestError, match=r"messages\.0\.role") as bad_role:
        api.chat.completions.create(model=MODEL_ID, messages=[{"role": "robot", "content": "hi"}])
    assert bad_role.value.status_code == 400
    with pytest.raises(openai.BadRequestError, match="stop sequences are not supported"):
        api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "hi"}], stop=["x"])
    with pytest.raises(openai.NotFoundError, match=MODEL_ID):
        api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        client(url, key="wrong").chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "hi"}])
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    broken = httpx2.post(f"{url}/chat/completions", content=b'{"model": "x", "messages": [', headers=headers)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
    empty = httpx2.post(f"{url}/chat/completions", json={"model": MODEL_ID, "messages": []}, headers=headers)
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "messages"
    huge = httpx2.post(f"{url}/chat/completions", headers=headers,
                       json={"model": MODEL_ID, "messages": [{"role": "user", "content": "x" * 30000}]})
    assert huge.status_code == 413 and "at most 20000" in huge.json()["error"]["message"]
    # still serving, and the process is alive
    assert ask(api, "Hi", max_tokens=4).choices[0].message.content
    assert process.poll() is None
    assert health(url)["errors"] >= 7


def test_models_lists_the_served_model(server):
    _, url = server
    assert [m.id for m in client(url).models.list()] == [MODEL_ID]


def test_a_pipeline_evaluation_runs_against_the_served_model(server, tiny_model, tmp_path, pm, monkeypatch):
    from finetunekit.config import load_config
    from finetunekit.pipeline import Pipeline

    _, url = server
    monkeypatch.setenv(KEY_ENV, KEY)
    toml = config_toml(tmp_path / "run", Path(tiny_model), make_source(tmp_path))
    local_base = f'name = "local"\noptions = {{ model = "{Path(tiny_model).as_posix()}" }}'
    assert local_base in toml
    toml = toml.replace(local_base, f'name = "openai"\noptions = {{ model = "{MODEL_ID}", base_url = "{url}", '
                                    f'api_key_env = "{KEY_ENV}", max_tokens = 6, progress = false }}')
    toml = toml.replace('[evaluation.chat_options]\nmax_new_tokens = 6\ndevice = "cpu"\n', "")
    path = tmp_path / "served.toml"
    path.write_text(toml, encoding="utf-8")
    report = Pipeline.from_config(load_config(path), plugins=pm).run()
    base = report.answers[report.answers.model == "base"]
    assert len(base) >= 3
    assert list(base.answer) == direct_answers(tiny_model, list(base.question), 6)
