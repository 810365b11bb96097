"""Chat data as it comes (OpenAI messages, ShareGPT, Alpaca) → examples: property tests of the
converters, the public loader, and errors that name the file, line and field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import finetunekit
from finetunekit.errors import ConfigError, DataError
from finetunekit.examples.chat_formats import SHAREGPT_ROLES, chat_example
from finetunekit.examples.validation import check_example

text = st.text(min_size=1, max_size=30).filter(str.strip)
SPEAKERS = {"user": ["human", "user"], "assistant": ["gpt", "assistant"], "system": ["system"]}


@st.composite
def conversations(draw):
    """A system message or not, then alternating user/assistant turns ending with the assistant."""
    turns = draw(st.integers(1, 4))
    messages = [{"role": "system", "content": draw(text)}] if draw(st.booleans()) else []
    for _ in range(turns):
        messages += [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]
    return messages


@given(conversations(), st.data())
def test_sharegpt_turns_become_the_same_messages(messages, data):
    record = {"conversations": [{"from": data.draw(st.sampled_from(SPEAKERS[m["role"]])), "value": m["content"]}
                                for m in messages]}
    example = chat_example(record, "sharegpt")
    assert example == {"messages": messages}
    assert check_example(example)[0] == []


@given(conversations())
def test_a_top_level_sharegpt_system_comes_first(messages):
    body = [m for m in messages if m["role"] != "system"]
    record = {"system": "Be kind.", "conversations": [{"from": "human" if m["role"] == "user" else "gpt",
                                                       "value": m["content"]} for m in body]}
    assert chat_example(record, "sharegpt")["messages"] == [{"role": "system", "content": "Be kind."}, *body]


@given(conversations(), st.dictionaries(st.sampled_from(["id", "source", "score"]), st.integers()))
def test_openai_messages_are_kept_and_other_keys_left_out(messages, extra):
    nulled = [{**m, "name": None} for m in messages]  # as Parquet stores a key absent from a message
    example = chat_example({"messages": nulled, **extra, "tools": []}, "messages")
    assert example == {"messages": messages, "tools": []}


@given(text, st.one_of(st.just(""), text), text, st.lists(st.tuples(text, text), max_size=3), st.one_of(st.none(), text))
def test_alpaca_records_become_history_then_instruction_and_input_then_output(instruction, extra, output, history, system):
    record = {"instruction": instruction, "input": extra, "output": output, "history": [list(p) for p in history]}
    if system is not None:
        record["system"] = system
    messages = chat_example(record, "alpaca")["messages"]
    head = [{"role": "system", "content": system}] if system else []
    turns = [m for q, a in history for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    question = f"{instruction}\n{extra}" if extra else instruction
    assert messages == [*head, *turns, {"role": "user", "content": question}, {"role": "assistant", "content": output}]
    assert check_example({"messages": messages})[0] == []


@given(st.text(min_size=1, max_size=12).filter(lambda s: s not in SHAREGPT_ROLES), st.integers(1, 10_000))
def test_an_unknown_sharegpt_speaker_names_the_file_line_and_field(speaker, line):
    record = {"conversations": [{"from": "human", "value": "hi"}, {"from": speaker, "value": "yo"}]}
    with pytest.raises(DataError) as caught:
        chat_example(record, "sharegpt", path="chats.jsonl", line=line)
    assert (caught.value.path, caught.value.line, caught.value.field) == ("chats.jsonl", line, "conversations[1].from")


@settings(max_examples=50)
@given(st.sampled_from(["messages", "sharegpt", "alpaca"]),
       st.dictionaries(st.sampled_from(["text", "prompt", "answer", "conversation"]), st.one_of(text, st.integers())))
def test_a_record_without_its_formats_keys_is_a_data_error_never_an_example(chat_format, record):
    with pytest.raises(DataError):
        chat_example(record, chat_format, path="x.jsonl", line=1)


@pytest.mark.parametrize("record, field", [
    ({"instruction": "Do", "output": 3}, "output"),
    ({"instruction": "Do", "output": "ok", "history": [["only one"]]}, "history[0]"),
    ({"conversations": [{"from": "human", "value": None}]}, "conversations[0].value"),
    ({"conversations": [{"role": "user", "content": "hi"}]}, "conversations[0]"),
])
def test_wrong_shapes_name_the_field(record, field):
    chat_format = "alpaca" if "instruction" in record else "sharegpt"
    with pytest.raises(DataError) as caught:
        chat_example(record, chat_format, path="d.jsonl", line=7)
    assert caught.value.field == field and caught.value.line == 7


def test_an_unknown_chat_format_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown chat format 'chatml'"):
        chat_example({}, "chatml")


def test_load_chat_examples_reads_a_file_and_keeps_each_examples_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    records = [{"conversations": [{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": f"A{i}"}]} for i in range(3)]
    path.write_text(json.dumps(records[0]) + "\n\n" + "".join(json.dumps(r) + "\n" for r in records[1:]), encoding="utf-8")
    examples = finetunekit.load_chat_examples(path, "sharegpt")
    assert examples.user_questions() == ["Q0", "Q1", "Q2"] and examples.assistant_answers() == ["A0", "A1", "A2"]
    assert [m["line"] for m in examples.metadata] == [1, 3, 4]
    report = examples.validate()
    assert report.ok and report.n_examples == 3


def test_validation_issues_of_loaded_examples_carry_their_file_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    rows = [{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
            {"messages": [{"role": "user", "content": "Q2"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = finetunekit.load_chat_examples(path, "messages").validate()
    assert [(e.code, e.line) for e in report.errors] == [("example_missing_assistant_message", 2)]
