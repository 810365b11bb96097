"""Continuous greedy decoding: the tokens ``transformers``' ``generate`` picks for each prompt
alone, whatever the number of slots and whenever rows leave and join."""

from __future__ import annotations

import collections

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_fixtures import CHAT_QUESTIONS, tiny_model_for_module

torch = pytest.importorskip("torch")

from finetunekit.backends.local.decoding import ROOM, decode_greedy  # noqa: E402
from finetunekit.registry import get_chat_model  # noqa: E402

MAX_NEW = ROOM + 16  # longer than a buffer's first allocation: the cache grows mid-answer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model, its tokenizer, prompts of several lengths, stop tokens that end answers at
    different lengths, and each prompt's answer from ``generate`` alone."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from finetunekit.backends.local.loading import end_of_turn_ids

    path = tiny_model_for_module(tmp_path_factory)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    questions = [q + " please" * n for n, q in enumerate(CHAT_QUESTIONS * 2)]
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                             return_dict=True)["input_ids"] for q in questions]

    def alone(stops: list[int]) -> list[list[int]]:
        config = GenerationConfig(max_new_tokens=MAX_NEW, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id,
                                  do_sample=False)
        answers = []
        for prompt in prompts:
            ids = torch.tensor([prompt])
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
            tokens = out[0, ids.shape[1]:].tolist()
            answers.append(next((tokens[:n] for n, t in enumerate(tokens) if t in stops), tokens))
        return answers

    # the random model never ends its turn: also stop at the tokens it picks most often
    common = collections.Counter(t for answer in alone(end_of_turn_ids(tokenizer)) for t in answer[4:])
    stops = end_of_turn_ids(tokenizer) + [token for token, _ in common.most_common(3)]
    return model, tokenizer, prompts, stops, alone(stops), path


def decode(tiny, prompts, slots, **kwargs):
    model, tokenizer, _, stops, _, _ = tiny
    with torch.inference_mode():
        return decode_greedy(model, prompts, pad_id=tokenizer.pad_token_id, stop_ids=stops, max_new_tokens=MAX_NEW,
                             slots=slots, **kwargs)


def test_the_stop_tokens_end_answers_at_many_lengths(tiny):
    lengths = {len(answer) for answer in tiny[4]}
    assert len(lengths) >= 4 and MAX_NEW in lengths  # rows leave at different steps, some run to the limit


@pytest.mark.parametrize("slots", [1, 2, 3, 5, 100])
def test_answers_equal_generate_alone_for_any_number_of_slots(tiny, slots):
    decoded = decode(tiny, tiny[2], slots)
    assert [d.tokens for d in decoded] == tiny[4]
    assert [d.finished for d in decoded] == [len(a) < MAX_NEW for a in tiny[4]]
    for d in decoded:  # one log-probability per generated token, the stop token's included
        assert len(d.log_probs) == len(d.tokens) + d.finished
        assert all(p <= 0 for p in d.log_probs)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_and_slots_give_each_prompt_its_own_answer(tiny, data):
    picked = data.draw(st.lists(st.integers(0, len(tiny[2]) - 1), min_size=1, max_size=12), label="prompts")
    slots = data.draw(st.integers(1, 8), label="slots")
    decoded = decode(tiny, [tiny[2][i] for i in picked], slots)
    assert [d.tokens for d in decoded] == [tiny[4][i] for i in picked]


def test_log_probs_are_those_of_the_greedy_tokens(tiny):
    model, _, prompts, _, answers, _ = tiny
    decoded = decode(tiny, prompts[:3], 2)
    for prompt, d in zip(prompts[:3], decoded):
        ids = torch.tensor([prompt + d.tokens])
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        picked = logits.log_softmax(-1).gather(-1, torch.tensor(d.tokens)[:, None])[:, 0]
        assert picked.tolist() == pytest.approx(d.log_probs[: len(d.tokens)], abs=1e-4)


def test_each_answer_is_reported_once_as_it_completes(tiny):
    done = []
    decoded = decode(tiny, tiny[2], 3, on_done=lambda i, d: done.append((i, len(d.tokens))))
    assert sorted(i for i, _ in done) == list(range(len(tiny[2])))
    assert all(n == len(decoded[i].tokens) for i, n in done)
    assert [i for i, _ in done] != list(range(len(tiny[2])))  # short answers come back before long ones


def test_no_prompts_no_answers(tiny):
    assert decode(tiny, [], 4) == []


def test_the_chat_model_answers_and_scores_alike_with_and_without_continuous_batching(pm, tiny):
    options = dict(model=tiny[5], device="cpu", max_new_tokens=MAX_NEW, batch_size=3, progress=False,
                   confidence_after="the")
    continuous = get_chat_model("local", plugins=pm, **options).answer_scored(CHAT_QUESTIONS)
    batched = get_chat_model("local", plugins=pm, continuous_batching=False, **options).answer_scored(CHAT_QUESTIONS)
    assert [a.text for a in continuous] == [a.text for a in batched]
    assert [a.confidence for a in continuous] == pytest.approx([a.confidence for a in batched], abs=1e-4)


def test_no_slots_is_an_error(tiny):
    with pytest.raises(ValueError, match="slots"):
        decode(tiny, tiny[2], 0)


def test_a_model_whose_generation_config_changes_scores_answers_through_generate(pm, tiny, tmp_path):
    import shutil

    from transformers import AutoModelForCausalLM, GenerationConfig

    from finetunekit.backends.local.decoding import supports_continuous_decoding

    def with_generation_config(name, **fields):
        folder = tmp_path / name
        shutil.copytree(tiny[5], folder)
        config = GenerationConfig.from_pretrained(folder)
        for key, value in fields.items():
            setattr(config, key, value)
        config.save_pretrained(folder)
        return str(folder)

    penalised = with_generation_config("penalised", repetition_penalty=1.3)
    # the tokens the plain model starts its answers with may not be generated
    suppressed = with_generation_config("suppressed", suppress_tokens=sorted({a[0] for a in tiny[4]}))
    assert supports_continuous_decoding(tiny[0])
    assert not supports_continuous_decoding(AutoModelForCausalLM.from_pretrained(penalised))
    assert not supports_continuous_decoding(AutoModelForCausalLM.from_pretrained(suppressed))
    options = dict(device="cpu", max_new_tokens=24, batch_size=3, progress=False)
    plain = get_chat_model("local", plugins=pm, model=tiny[5], **options).answer(CHAT_QUESTIONS)
    answers = get_chat_model("local", plugins=pm, model=suppressed, **options).answer(CHAT_QUESTIONS)
    through_generate = get_chat_model("local", plugins=pm, model=suppressed, continuous_batching=False,
                                      **options).answer(CHAT_QUESTIONS)
    assert answers == through_generate  # the suppression is applied, as generate applies it
    assert answers != plain
