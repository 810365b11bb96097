"""Chat-template tokenisation: labels only on assistant tokens, EOS included; padding; counts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from finetunekit.errors import DataError
from finetunekit.backends.local.collation import (
    IGNORE_INDEX,
    PaddingCollator,
    tokenize_example,
    tokenize_examples,
)
from local_fixtures import smollm2_tokenizer_dir

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from finetunekit.backends.local.loading import load_tokenizer

    return load_tokenizer(str(smollm2_tokenizer_dir(tmp_path_factory.mktemp("tok"))))


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Tell me about Dune from Amazon."},
    {"role": "assistant", "content": "This is what I know about Dune from Amazon: a desert planet."},
    {"role": "user", "content": "And the sequel?"},
    {"role": "assistant", "content": "Dune Messiah."},
]


def labelled_runs(item):
    """Contiguous runs of labelled token ids."""
    runs, current = [], []
    for token, label in zip(item.input_ids, item.labels):
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    if current:
        runs.append(current)
    return runs


def test_labels_cover_exactly_the_assistant_turns_with_their_end_of_turn_token(tokenizer):
    item = tokenize_example(tokenizer, CONVERSATION, max_length=1024)
    runs = labelled_runs(item)
    end = tokenizer.eos_token
    assert [tokenizer.decode(r) for r in runs] == [
        "This is what I know about Dune from Amazon: a desert planet." + end,
        "Dune Messiah." + end,
    ]
    assert tokenizer.eos_token_id in item.labels
    # token by token: everything outside those runs (system, user, role headers) is -100
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert tokenizer.decode(item.input_ids) == text
    masked = [t for t, label in zip(item.input_ids, item.labels) if label == IGNORE_INDEX]
    masked_text = tokenizer.decode(masked)
    for message in CONVERSATION[:2] + CONVERSATION[3:4]:
        assert message["content"] in masked_text
    assert "desert planet" not in masked_text


def test_pad_equal_to_eos_still_keeps_eos_as_a_label(tokenizer):
    import copy

    same = copy.deepcopy(tokenizer)
    same.pad_token = same.eos_token
    item = tokenize_example(same, CONVERSATION[1:3], max_length=1024)
    batch = PaddingCollator(same.pad_token_id)([
        {"input_ids": item.input_ids, "labels": item.labels},
        {"input_ids": item.input_ids[:5], "labels": item.labels[:5]},
    ])
    labels = batch["labels"][0].tolist()
    assert labels.count(same.eos_token_id) == 1
    assert batch["labels"][1, 5:].eq(IGNORE_INDEX).all()
    assert batch["attention_mask"][1].tolist() == [1] * 5 + [0] * (len(item.input_ids) - 5)
    assert batch["input_ids"][1, 5:].eq(same.pad_token_id).all()


def test_truncation_and_untrainable_examples_are_counted(tokenizer):
    short = {"messages": CONVERSATION[1:3]}
    items, report = tokenize_examples(tokenizer, [short, short, {"messages": CONVERSATION}], max_length=30)
    full = tokenize_example(tokenizer, CONVERSATION[1:3], max_length=10_000)
    assert len(full.input_ids) > 30
    assert report.truncated == 3 and report.truncated_indices == [0, 1, 2]
    assert all(len(i.input_ids) == 30 for i in items)
    # the system prompt plus the question fill 30 tokens: nothing left to learn
    assert report.no_trainable_tokens == sum(1 for i in items if i.trainable_tokens == 0)
    assert report.no_trainable_tokens >= 2
    assert any("truncated" in w for w in report.warnings())
    assert any("no assistant token" in w for w in report.warnings())


def test_an_example_without_messages_is_a_data_error_naming_its_line(tokenizer):
    with pytest.raises(DataError, match="line 2.*messages"):
        tokenize_examples(tokenizer, [{"messages": CONVERSATION[1:3]}, {"prompt": "x"}], max_length=64)


def test_dynamic_padding_pads_to_the_longest_in_the_batch_and_fixed_padding_to_pad_to():
    features = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    dynamic = PaddingCollator(0)(features)
    fixed = PaddingCollator(0, pad_to=16)(features)
    assert dynamic["input_ids"].shape == (2, 3)
    assert fixed["input_ids"].shape == (2, 16)
    assert dynamic["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40).map(str.strip).filter(bool)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=text, answer=text)
def test_labelled_tokens_decode_to_the_answer_for_any_text(tokenizer, question, answer):
    # the GGUF tokenizer cannot represent some rare code points at all; those say nothing here
    assume(tokenizer.decode(tokenizer.encode(answer, add_special_tokens=False)) == answer)
    item = tokenize_example(tokenizer, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], 4096)
    runs = labelled_runs(item)
    assert len(runs) == 1
    assert tokenizer.decode(runs[0]) == answer + tokenizer.eos_token
