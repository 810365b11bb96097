"""The local chat model's confidence score equals a hand computation from the model's logits,
and abstention replaces unsure answers by the refusal."""

from __future__ import annotations

import pytest

from finetunekit.registry import get_chat_model
from local_fixtures import smollm2_tokenizer_dir, tiny_llama_dir

torch = pytest.importorskip("torch")

QUESTIONS = ["Tell me about the Blue Kettle.", "Hi", "What is the product Dune (Paperback) by Frank Herbert?"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    tok = smollm2_tokenizer_dir(tmp_path_factory.mktemp("tok"))
    return str(tiny_llama_dir(tok, tmp_path_factory.mktemp("tiny"), init_range=0.05))


def chat(pm, tiny_model, **options):
    defaults = {"device": "cpu", "max_new_tokens": 10, "progress": False, "batch_size": 2}
    return get_chat_model("local", plugins=pm, model=tiny_model, **{**defaults, **options})


def by_hand(model, question, n_tokens, skip=0):
    """Mean log-probability of the greedy answer's tokens ``skip .. skip + n_tokens`` from one
    plain forward pass over prompt + answer."""
    tokenizer, network = model.loaded.tokenizer, model.loaded.model
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                           add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        out = network.generate(input_ids=torch.tensor([prompt_ids]), max_new_tokens=10, do_sample=False,
                               pad_token_id=tokenizer.pad_token_id,
                               eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
        answer = out[0, len(prompt_ids):].tolist()
        stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
        answer = answer[: answer.index(stop)] if stop in answer else answer
        logits = network(torch.tensor([prompt_ids + answer])).logits[0].float()
    log_probs = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)
    chosen = log_probs[torch.arange(len(answer)), torch.tensor(answer)].tolist()
    window = chosen[skip : skip + n_tokens] or chosen
    return sum(window) / len(window), answer


def test_confidence_of_a_greedy_answer_equals_the_hand_computation(pm, tiny_model):
    model = chat(pm, tiny_model, confidence_tokens=4)
    scored = model.answer_scored(QUESTIONS)  # batched, left-padded, KV cache
    for question, answer in zip(QUESTIONS, scored):
        expected, _ = by_hand(model, question, 4)
        assert answer.confidence == pytest.approx(expected, abs=1e-4)
        assert not answer.abstained


def test_confidence_after_a_marker_skips_the_tokens_up_to_it(pm, tiny_model):
    model = chat(pm, tiny_model, confidence_tokens=3)
    first = model.answer_scored(QUESTIONS[:1])[0]
    _, answer_ids = by_hand(model, QUESTIONS[0], 3)
    tokenizer = model.loaded.tokenizer
    marker = tokenizer.decode(answer_ids[:2], skip_special_tokens=True)  # the answer's first two tokens
    assert marker and first.text.startswith(marker.strip())
    after = chat(pm, tiny_model, confidence_tokens=3, confidence_after=marker).answer_scored(QUESTIONS[:1])[0]
    assert after.confidence == pytest.approx(by_hand(model, QUESTIONS[0], 3, skip=2)[0], abs=1e-4)


def test_answers_below_the_threshold_become_the_refusal_and_the_cache_keeps_raw_answers(pm, tiny_model, tmp_path):
    plain = chat(pm, tiny_model, answer_cache_dir=str(tmp_path)).answer_scored(QUESTIONS)
    scores = sorted(a.confidence for a in plain)
    threshold = (scores[0] + scores[1]) / 2  # exactly the least confident answer falls below
    abstaining = chat(pm, tiny_model, answer_cache_dir=str(tmp_path), abstain_below=threshold, refusal="No idea.")
    judged = abstaining.answer_scored(QUESTIONS)
    assert [a.abstained for a in judged] == [a.confidence == scores[0] for a in plain]
    assert [a.text for a in judged] == ["No idea." if a.confidence == scores[0] else a.text for a in plain]
    # the threshold is applied after the cache: the same cached raw answers serve both models
    assert chat(pm, tiny_model, answer_cache_dir=str(tmp_path)).answer(QUESTIONS) == [a.text for a in plain]


def test_sampled_answers_have_no_confidence_so_abstention_refuses_to_guess(pm, tiny_model):
    from finetunekit.errors import ConfigError

    assert chat(pm, tiny_model, temperature=1.0).answer_scored(QUESTIONS[:1])[0].confidence is None
    with pytest.raises(ConfigError, match="no confidence"):
        chat(pm, tiny_model, temperature=1.0, abstain_below=-1.0).answer(QUESTIONS[:1])
