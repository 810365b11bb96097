"""ChatModel "openai" scores its answers from the API's token log-probabilities (``logprobs``):
the confidence equals a hand computation from the raw response, abstention replaces unsure
answers by the refusal, and the answer cache keeps the confidences."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from finetunekit.backends.openai.chat import token_confidence
from finetunekit.errors import ConfigError
from finetunekit.testing.pytest_plugin import fake_openai  # noqa: F401 - the fixture
from openai_helpers import fake_chat, make_examples

QUESTIONS = ["Tell me about the Blue Kettle.", "Hi", "What is the product Dune (Paperback) by Frank Herbert?"]
MARKER = "I know little about this:"  # inside the fake base model's generic answer


def raw_logprobs(fake, question, model="gpt-4o-mini"):
    """The answer and its tokens' ``(token, logprob)`` as the raw SDK receives them."""
    response = fake.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], logprobs=True)
    choice = response.choices[0]
    return choice.message.content, [(t.token, t.logprob) for t in choice.logprobs.content]


def mean(values):
    return sum(values) / len(values)


def trained_model(fake, examples):
    """A fine-tuned model id on ``fake`` that learned ``examples`` (a job run through the SDK)."""
    client = fake.client()
    data = "\n".join(json.dumps(e) for e in examples).encode()
    training = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id)
    for _ in range(3):
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded"
    return job.fine_tuned_model


def test_fake_returns_logprobs_of_tokens_that_join_to_the_answer_only_when_asked(fake_openai):
    text, tokens = raw_logprobs(fake_openai, QUESTIONS[0])
    assert "".join(token for token, _ in tokens) == text and len(tokens) == len(text.split())
    assert all(-3.0 <= logprob <= -1.0 for _, logprob in tokens)
    assert raw_logprobs(fake_openai, QUESTIONS[0]) == (text, tokens)  # deterministic
    plain = fake_openai.client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    assert plain.choices[0].logprobs is None
    fake_openai.script_logprobs({"general": -7.5})
    assert dict(raw_logprobs(fake_openai, QUESTIONS[0])[1])[" general"] == -7.5


def test_confidence_is_the_mean_logprob_of_the_first_tokens(fake_openai, pm):
    chat = fake_chat(fake_openai, pm, logprobs=True, confidence_tokens=4)
    scored = chat.answer_scored(QUESTIONS)
    for question, answer in zip(QUESTIONS, scored):
        text, tokens = raw_logprobs(fake_openai, question)
        assert answer.text == text and not answer.abstained
        assert answer.confidence == pytest.approx(mean([lp for _, lp in tokens[:4]]), abs=1e-9)
    bodies = [r.body for r in fake_openai.requests("chat.completions")][: len(QUESTIONS)]
    assert all(body["logprobs"] is True for body in bodies)
    whole = fake_chat(fake_openai, pm, logprobs=True).answer_scored(QUESTIONS[:1])[0]  # 40 > the answer's length
    assert whole.confidence == pytest.approx(mean([lp for _, lp in raw_logprobs(fake_openai, QUESTIONS[0])[1]]))


def test_confidence_after_a_marker_skips_the_tokens_up_to_it(fake_openai, pm):
    text, tokens = raw_logprobs(fake_openai, QUESTIONS[2])
    assert MARKER in text
    skip = len(text[: text.index(MARKER) + len(MARKER)].split(" "))  # tokens through the marker
    after = fake_chat(fake_openai, pm, logprobs=True, confidence_tokens=3, confidence_after=MARKER)
    expected = mean([lp for _, lp in tokens[skip : skip + 3]])
    assert after.answer_scored(QUESTIONS[2:])[0].confidence == pytest.approx(expected, abs=1e-9)
    assert expected != pytest.approx(mean([lp for _, lp in tokens[:3]]))
    absent = fake_chat(fake_openai, pm, logprobs=True, confidence_tokens=3, confidence_after="not in the answer")
    assert absent.answer_scored(QUESTIONS[2:])[0].confidence == pytest.approx(mean([lp for _, lp in tokens[:3]]))


def test_marker_search_works_on_token_bytes_and_an_empty_window_takes_every_token():
    def tok(text, logprob):
        return SimpleNamespace(token=text, logprob=logprob, bytes=list(text.encode()))

    euro = "\u20ac".encode()  # one character split over two tokens, as byte-level BPE does
    tokens = [SimpleNamespace(token="bytes:\\xe2", logprob=-1.0, bytes=list(euro[:1])),
              SimpleNamespace(token="bytes:\\x82\\xac", logprob=-2.0, bytes=list(euro[1:])),
              tok(" 5", -3.0), tok(" only", -4.0)]
    assert token_confidence(tokens, "\u20ac", 1) == -3.0
    assert token_confidence(tokens, " only", 2) == pytest.approx(-2.5)  # nothing after it: all tokens
    assert token_confidence(tokens, None, 2) == -1.5
    assert token_confidence([], None, 2) is None


def test_abstain_below_refuses_what_the_fine_tuned_model_did_not_learn(fake_openai, pm):
    examples = make_examples(4)
    model = trained_model(fake_openai, examples)
    known = [e["messages"][0]["content"] for e in examples[:2]]
    unknown = ["Tell me about Item 99 from Amazon.", "Tell me about the Blue Kettle from Amazon."]
    plain = fake_chat(fake_openai, pm, model=model, logprobs=True).answer_scored(known + unknown)
    assert all(a.confidence > -0.5 for a in plain[:2]) and all(a.confidence < -1.0 for a in plain[2:])

    chat = fake_chat(fake_openai, pm, model=model, logprobs=True, abstain_below=-0.75, refusal="No idea.")
    judged = chat.answer_scored(known + unknown)
    assert [a.abstained for a in judged] == [False, False, True, True]
    assert [a.text for a in judged] == [e["messages"][1]["content"] for e in examples[:2]] + ["No idea."] * 2
    assert [a.confidence for a in judged] == [a.confidence for a in plain]
    assert chat.answer(known + unknown) == [a.text for a in judged]


def test_a_cached_rerun_sends_nothing_and_keeps_the_confidences(fake_openai, pm, tmp_path):
    cache = str(tmp_path / "cache")
    first = fake_chat(fake_openai, pm, logprobs=True, answer_cache_dir=cache).answer_scored(QUESTIONS + QUESTIONS[:1])
    assert fake_openai.count("chat.completions") == len(QUESTIONS)  # the duplicate was asked once
    assert first[0] == first[-1]
    threshold = sorted(a.confidence for a in first)[1]
    again = fake_chat(fake_openai, pm, logprobs=True, answer_cache_dir=cache, abstain_below=threshold)
    rerun = again.answer_scored(QUESTIONS + QUESTIONS[:1])
    assert fake_openai.count("chat.completions") == len(QUESTIONS)
    assert [a.confidence for a in rerun] == [a.confidence for a in first]
    assert [a.abstained for a in rerun] == [a.confidence < threshold for a in first]
    # plain runs share the cached answers (logprobs is not in the key) but report no confidence
    plain = fake_chat(fake_openai, pm, answer_cache_dir=cache).answer_scored(QUESTIONS)
    assert [(a.text, a.confidence) for a in plain] == [(a.text, None) for a in first[:3]]
    assert fake_openai.count("chat.completions") == len(QUESTIONS)


def test_unscored_or_differently_scored_cache_entries_are_asked_again_with_logprobs(fake_openai, pm, tmp_path):
    cache = str(tmp_path / "cache")
    fake_chat(fake_openai, pm, answer_cache_dir=cache).answer(QUESTIONS)
    scored = fake_chat(fake_openai, pm, logprobs=True, answer_cache_dir=cache).answer_scored(QUESTIONS)
    assert fake_openai.count("chat.completions") == 2 * len(QUESTIONS)
    assert all(a.confidence is not None for a in scored)
    fake_chat(fake_openai, pm, logprobs=True, answer_cache_dir=cache).answer_scored(QUESTIONS)
    assert fake_openai.count("chat.completions") == 2 * len(QUESTIONS)
    other = fake_chat(fake_openai, pm, logprobs=True, answer_cache_dir=cache, confidence_tokens=2).answer_scored(QUESTIONS)
    assert fake_openai.count("chat.completions") == 3 * len(QUESTIONS)
    assert other[0].confidence == pytest.approx(mean([lp for _, lp in raw_logprobs(fake_openai, QUESTIONS[0])[1][:2]]))


def test_without_logprobs_there_is_no_confidence_and_abstention_is_refused_before_any_request(
        fake_openai, pm, tmp_path):
    scored = fake_chat(fake_openai, pm).answer_scored(QUESTIONS)
    assert [a.confidence for a in scored] == [None] * len(QUESTIONS)
    assert "logprobs" not in fake_openai.requests("chat.completions")[0].body
    fake_openai.log.clear()
    with pytest.raises(ConfigError, match="no confidence"):
        fake_chat(fake_openai, pm, abstain_below=-1.0).answer(QUESTIONS)
    assert fake_openai.count("chat.completions", outcome=None) == 0
    # a cache of scored answers does not lend them to a model that does not ask for logprobs
    cache = str(tmp_path / "cache")
    fake_chat(fake_openai, pm, logprobs=True, answer_cache_dir=cache).answer(QUESTIONS)
    fake_openai.log.clear()
    with pytest.raises(ConfigError, match="logprobs"):
        fake_chat(fake_openai, pm, answer_cache_dir=cache, abstain_below=-1.0).answer(QUESTIONS)
    assert fake_openai.count("chat.completions", outcome=None) == 0
