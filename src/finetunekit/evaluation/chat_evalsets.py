"""Eval sets from chat examples (data brought as ``messages``/ShareGPT/Alpaca, no templates).

Each example becomes one question: the model is asked every message before the example's
last assistant message (system, first user turn, and any earlier turns of a multi-turn
conversation), and that last assistant message is the reference (``target`` and
``content``; there is no fixed answer ``prefix``, so ``format`` is not measured).

- ``train-questions``: the conversations trained on;
- ``unseen-products``: held-out conversations (the test split), never trained on.

There is no ``paraphrased`` split: without templates there is no other wording to ask with.
"""

from __future__ import annotations

from typing import Any

from finetunekit.evaluation.evalsets import TRAIN_QUESTIONS, UNSEEN_PRODUCTS, EvalItem, EvalSet, _choose


def chat_eval_items(split: str, examples: Any) -> list[EvalItem]:
    """One item per example of ``examples`` (an ExampleSet): its prompt and last answer."""
    prompts = examples.prompt_messages()
    answers = examples.assistant_answers()
    items = []
    for prompt, answer, meta in zip(prompts, answers, examples.metadata):
        question = next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
        items.append(EvalItem(split=split, messages=tuple(prompt), question=str(question), target=answer,
                              content=answer, prefix=None, row_id=meta.get("row_id"), template=None))
    return items


def chat_eval_sets(trained: Any, held_out: Any = None, *, limit: int | None = None, seed: int = 0) -> list[EvalSet]:
    """``train-questions`` from ``trained`` and ``unseen-products`` from ``held_out`` (ExampleSets);
    at most ``limit`` items each, chosen with ``seed``."""
    sets = [EvalSet(TRAIN_QUESTIONS, _choose(chat_eval_items(TRAIN_QUESTIONS, trained), limit, seed),
                    "the conversations trained on")]
    if held_out is not None and len(held_out):
        sets.append(EvalSet(UNSEEN_PRODUCTS, _choose(chat_eval_items(UNSEEN_PRODUCTS, held_out), limit, seed),
                            "held-out conversations, never trained on"))
    return sets
