"""The local chat model: batching, order, stopping, sampling, the answer cache, the default model."""

from __future__ import annotations

import pytest

from finetunekit.registry import get_chat_model
from local_fixtures import CHAT_QUESTIONS, tiny_model_for_module

pytest.importorskip("torch")

QUESTIONS = CHAT_QUESTIONS


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_model_for_module(tmp_path_factory, init_range=0.05)


def chat(pm, tiny_model, **options):
    defaults = {"device": "cpu", "max_new_tokens": 12, "progress": False}
    return get_chat_model("local", plugins=pm, model=tiny_model, **{**defaults, **options})


def test_batched_answers_equal_one_at_a_time_answers_in_input_order(pm, tiny_model):
    model = chat(pm, tiny_model, batch_size=4)
    batched = model.answer(QUESTIONS)
    single = [model.answer([q])[0] for q in QUESTIONS]
    assert batched == single
    assert len(set(batched)) > 1  # different prompts, different answers: order is checked


def test_conversations_with_a_system_message_and_history_are_answered(pm, tiny_model):
    model = chat(pm, tiny_model)
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Tell me about the Blue Kettle from Amazon."},
    ]
    answers = model.answer([conversation, "Hi"])
    # The whole conversation reaches the model: the answer is the greedy continuation of the
    # chat template rendered over every message, computed here by hand with transformers.
    import torch

    tokenizer, network = model.loaded.tokenizer, model.loaded.model
    ids = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = network.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                               eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    by_hand = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert answers[0] == by_hand
    assert answers[1] == model.answer(["Hi"])[0]
    # and the history changes the answer: the last question alone is answered differently
    assert model.answer([conversation[-1:]])[0] != answers[0]


def test_max_new_tokens_bounds_the_answer(pm, tiny_model):
    model = chat(pm, tiny_model, max_new_tokens=3)
    tokenizer = model.loaded.tokenizer
    for answer in model.answer(QUESTIONS[:2]):
        assert len(tokenizer(answer, add_special_tokens=False)["input_ids"]) <= 4


def test_sampling_is_seeded(pm, tiny_model):
    a = chat(pm, tiny_model, temperature=1.0, seed=3).answer(QUESTIONS[:2])
    b = chat(pm, tiny_model, temperature=1.0, seed=3).answer(QUESTIONS[:2])
    greedy = chat(pm, tiny_model).answer(QUESTIONS[:2])
    assert a == b
    assert a != greedy


def test_the_answer_cache_returns_stored_answers_without_generating(pm, tiny_model, tmp_path):
    # its own copy of the model (not the process's shared one), which is then taken away
    model = chat(pm, tiny_model, answer_cache_dir=str(tmp_path / "answers"), share_model=False)
    first = model.answer(QUESTIONS[:3])
    files = sorted(p.name for p in (tmp_path / "answers").rglob("*.json"))
    assert len(files) == 3
    model._loaded.model = None  # anything that still generated would now crash
    assert model.answer(QUESTIONS[:3]) == first
    other = chat(pm, tiny_model, answer_cache_dir=str(tmp_path / "answers"), max_new_tokens=5)
    other.answer(QUESTIONS[:1])
    assert len(list((tmp_path / "answers").rglob("*.json"))) == 4


@pytest.mark.slow
def test_the_default_model_loads_from_the_gguf_and_answers(pm, tmp_path):
    pytest.importorskip("gguf")
    model = get_chat_model("local", plugins=pm, cache_dir=str(tmp_path / "cache"), max_new_tokens=24, progress=False)
    (answer,) = model.answer(["What is the capital of France? Answer in one word."])
    assert "Paris" in answer
    assert (tmp_path / "cache" / "smollm2-135m-instruct" / "model.safetensors").is_file()
