"""The on-disk answer cache: keys, round trips, corruption and concurrent writers."""

from __future__ import annotations

import concurrent.futures

from hypothesis import given, settings
from hypothesis import strategies as st

from finetunekit.answer_cache import AnswerCache, hash_request, request_key

messages_strategy = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text()}),
    min_size=1, max_size=4)


@settings(max_examples=50, deadline=None)
@given(messages=messages_strategy, answer=st.text())
def test_any_unicode_request_round_trips(tmp_path_factory, messages, answer):
    cache = AnswerCache(tmp_path_factory.mktemp("cache"))
    request = request_key("openai", "m", {"temperature": 0.0, "seed": None}, messages)
    assert cache.get(request) is None
    cache.put(request, answer)
    assert cache.get(request) == answer


@settings(max_examples=50, deadline=None)
@given(messages=messages_strategy, temperature=st.floats(0, 2), other=st.floats(0, 2))
def test_keys_separate_what_changes_answers(messages, temperature, other):
    key = hash_request(request_key("openai", "m", {"temperature": temperature}, messages))
    assert key == hash_request(request_key("openai", "m", {"temperature": temperature}, messages))
    assert key != hash_request(request_key("openai", "m2", {"temperature": temperature}, messages))
    assert key != hash_request(request_key("local", "m", {"temperature": temperature}, messages))
    if other != temperature:
        assert key != hash_request(request_key("openai", "m", {"temperature": other}, messages))


def test_corrupt_or_foreign_entry_counts_as_missing(tmp_path):
    cache = AnswerCache(tmp_path)
    request = request_key("openai", "m", {}, [{"role": "user", "content": "q"}])
    cache.put(request, "a")
    path = next(tmp_path.glob("*/*.json"))
    path.write_text('{"request": {"other": 1}, "answer": "wrong"}')
    assert cache.get(request) is None
    path.write_text('{"request": ')
    assert cache.get(request) is None


def test_concurrent_writers_never_leave_partial_entries(tmp_path):
    cache = AnswerCache(tmp_path)
    requests = [request_key("openai", "m", {}, [{"role": "user", "content": f"q{i % 20}"}]) for i in range(400)]

    def write(i: int) -> None:
        cache.put(requests[i], f"answer {i % 20} " + "x" * 5000)

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(400)))
    assert len(cache) == 20
    assert all(cache.get(r) == f"answer {i % 20} " + "x" * 5000 for i, r in enumerate(requests))
    assert not list(tmp_path.rglob("*.tmp"))
