"""Base and fine-tuned answers from one shared model equal those of two separately loaded models."""

from __future__ import annotations

import pytest

from finetunekit.registry import get_chat_model
from local_fixtures import CHAT_QUESTIONS, tiny_model_for_module

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

QUESTIONS = CHAT_QUESTIONS[:4]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_model_for_module(tmp_path_factory, init_range=0.05)


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter with random (non-zero) weights: it changes the answers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    directory = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(directory)
    return str(directory)


def chat(pm, tiny_model, **options):
    defaults = {"device": "cpu", "max_new_tokens": 10, "progress": False, "batch_size": 2}
    return get_chat_model("local", plugins=pm, model=tiny_model, **{**defaults, **options})


def test_answers_from_one_shared_model_equal_answers_from_two_separate_models(pm, tiny_model, adapter):
    separate_base = chat(pm, tiny_model, share_model=False)
    separate_tuned = chat(pm, tiny_model, adapter=adapter, share_model=False, merge_adapter=False)
    expected = {"base": separate_base.generate_scored(_messages()), "tuned": separate_tuned.generate_scored(_messages())}
    assert expected["base"] != expected["tuned"]  # the adapter matters, so a mix-up would show
    del separate_base, separate_tuned

    tuned = chat(pm, tiny_model, adapter=adapter)
    base = chat(pm, tiny_model)
    calibrating = chat(pm, tiny_model, adapter=adapter, max_new_tokens=10)
    # the tuned model answers first, so the adapter is loaded and active before the base answers
    assert tuned.generate_scored(_messages()) == expected["tuned"]
    assert base.generate_scored(_messages()) == expected["base"]
    assert calibrating.generate_scored(_messages()) == expected["tuned"]
    assert tuned.generate_scored(_messages()) == expected["tuned"]
    shared = {id(m.loaded.model) for m in (base, tuned, calibrating)}
    assert len(shared) == 1  # one model in memory for all three


def test_the_shared_tuned_model_caches_under_an_unmerged_identity(pm, tiny_model, adapter):
    shared = chat(pm, tiny_model, adapter=adapter)
    own = chat(pm, tiny_model, adapter=adapter, share_model=False)
    assert shared.cache_identity()["merge_adapter"] is False
    assert own.cache_identity()["merge_adapter"] is True
    assert chat(pm, tiny_model).cache_identity() == chat(pm, tiny_model, share_model=False).cache_identity()


def _messages():
    return [[{"role": "user", "content": q}] for q in QUESTIONS]


def test_a_released_copy_serves_the_next_model_of_its_weights_and_goes_when_others_load(pm, tiny_model, adapter):
    import gc
    import weakref

    base, tuned = chat(pm, tiny_model), chat(pm, tiny_model, adapter=adapter)
    expected = base.generate_scored(_messages())
    weights = weakref.ref(base.loaded.model)
    base.release()  # as the evaluator does before the fine-tuned model answers
    gc.collect()
    tuned.generate_scored(_messages())
    assert tuned.loaded.model.get_base_model() is weights()  # the same copy, not loaded again
    base.generate_scored(_messages())
    base.release()
    gc.collect()
    assert weights() is not None  # the tuned model still answers from it
    tuned.release()
    other = chat(pm, tiny_model, dtype="bfloat16")  # other weights: the released copy goes before they load
    other.generate_scored(_messages())
    gc.collect()
    assert weights() is None
    assert base.generate_scored(_messages()) == expected  # loaded again, the same answers


def test_the_evaluator_releases_each_model_after_its_answers(pm, tiny_model):
    import gc
    import weakref

    from finetunekit.evaluation.evalsets import EvalItem, EvalSet
    from finetunekit.evaluation.evaluator import Evaluator

    base = chat(pm, tiny_model, share_model=False)
    base.generate_scored(_messages())
    weights = weakref.ref(base.loaded.model)
    eval_set = EvalSet("train-questions", [
        EvalItem("train-questions", ({"role": "user", "content": q},), q, "an answer", "an answer", None, i)
        for i, q in enumerate(QUESTIONS)
    ])
    report = Evaluator(["rouge_l"], plugins=pm, progress=False).evaluate({"base": base}, eval_set)
    gc.collect()
    assert weights() is None
    assert len(report.answers) == len(QUESTIONS)
