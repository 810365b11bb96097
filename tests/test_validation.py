"""ValidationReport: OpenAI's data-prep checks, token statistics, epochs and billed tokens."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finetunekit.examples.example_set import ExampleSet
from finetunekit.examples.tokens import encoding_name_for, token_counter
from finetunekit.examples.validation import DEFAULT_TOKEN_LIMIT, check_example, default_epochs, validate_examples


def chat(question: str = "What is X?", answer: str = "X is a thing.") -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def test_clean_set_is_ok():
    report = ExampleSet([chat(f"Q{i}?", f"A{i}.") for i in range(60)]).validate(encoding="estimate")
    assert report.ok and report.errors == [] and report.warnings == []
    assert report.n_examples == 60 and report.epochs == 3 and report.token_limit == DEFAULT_TOKEN_LIMIT
    assert report.model_dump()["ok"] is True


@pytest.mark.parametrize(
    ("example", "code"),
    [
        ("just text", "data_type"),
        ({"prompt": "Q", "completion": "A"}, "prompt_completion_format"),
        ({"conversation": []}, "missing_messages_list"),
        ({**chat(), "label": 1}, "unknown_key"),
        ({"messages": "hi"}, "wrong_type"),
        ({"messages": []}, "wrong_type"),
        ({"messages": ["hi", {"role": "assistant", "content": "x"}]}, "data_type"),
        ({"messages": [{"content": "q"}, {"role": "assistant", "content": "a"}]}, "message_missing_key"),
        ({"messages": [{"role": "user", "content": "q", "mood": "ok"}, {"role": "assistant", "content": "a"}]},
         "message_unrecognized_key"),
        ({"messages": [{"role": "customer", "content": "q"}, {"role": "assistant", "content": "a"}]},
         "unrecognized_role"),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, "missing_content"),
        ({"messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "a"}]},
         "missing_content"),
        ({"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "a"}]}, "wrong_type"),
        ({"messages": [{"role": "user", "content": "q"}]}, "example_missing_assistant_message"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]},
         "invalid_weight"),
    ],
)
def test_each_format_error_is_reported_with_its_index(example, code):
    examples = [chat() for _ in range(12)]
    examples.insert(4, example)
    report = validate_examples(examples, encoding="estimate")
    assert not report.ok
    assert [(e.index, e.code) for e in report.errors] == [(4, code)]


def test_tool_calls_need_no_content_and_content_parts_are_accepted():
    tool_call = {"role": "assistant", "tool_calls": [{"id": "1", "type": "function",
                                                      "function": {"name": "f", "arguments": "{}"}}]}
    parts = {"role": "user", "content": [{"type": "text", "text": "Describe it."}]}
    errors, _ = check_example({"messages": [parts, tool_call, {"role": "tool", "tool_call_id": "1", "content": "r"},
                                            {"role": "assistant", "content": "done"}]})
    assert errors == []


def test_warnings_do_not_make_a_report_fail():
    examples = [chat() for _ in range(10)] + [{"messages": [{"role": "assistant", "content": " "}]}]
    report = validate_examples(examples, encoding="estimate", suggested_min_examples=50)
    codes = {w.code for w in report.warnings}
    assert {"few_examples", "duplicate_example", "missing_user_message", "empty_content"} <= codes
    assert report.ok


def test_fewer_than_the_minimum_is_an_error_and_the_minimum_is_the_callers():
    report = validate_examples([chat() for _ in range(9)], encoding="estimate", min_examples=10)
    assert [e.code for e in report.errors] == ["too_few_examples"]
    assert "at least 10" in report.errors[0].message
    assert validate_examples([chat() for _ in range(9)], encoding="estimate").ok  # generic rule: at least 1
    assert [e.code for e in validate_examples([], encoding="estimate").errors] == ["too_few_examples"]


def test_the_openai_trainer_owns_the_ten_example_minimum_and_the_local_one_does_not(pm):
    from finetunekit.examples.example_set import ExampleSet
    from finetunekit.registry import get_trainer

    few = ExampleSet([chat() for _ in range(8)])
    assert [e.code for e in get_trainer("openai", plugins=pm).check(few).errors] == ["too_few_examples"]
    assert get_trainer("local", plugins=pm).check(few).ok


def test_issues_carry_file_lines(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(chat()) for _ in range(11)] + ['{"prompt": "Q", "completion": "A"}']
    path.write_text("\n\n".join(lines) + "\n")
    report = ExampleSet.from_jsonl(path).validate("gpt-4o-mini", encoding="estimate")
    (error,) = report.errors
    assert (error.code, error.index, error.line) == ("prompt_completion_format", 11, 23)
    assert "example 11, line 23: [prompt_completion_format]" in report.to_text()
    assert '{"messages"' in error.message


def test_estimated_token_counts_follow_the_chat_format():
    # 3 per message + ~4 chars/token of each value + 3 for the reply primer.
    example = chat("abcd" * 10, "x" * 8)  # user: 1 + 10, assistant: 3 + 2
    report = validate_examples([example] * 10, encoding="estimate")
    assert report.tokens_estimated and report.encoding == "estimate"
    assert (report.tokens.min, report.tokens.max, report.tokens.total) == (25, 25, 250)
    assert report.assistant_tokens.max == 2
    assert report.epochs == 10 and report.billed_tokens == 250 * 10


def test_over_limit_examples_are_flagged_and_billed_at_the_limit():
    examples = [chat("q" * 400, "a")] * 3 + [chat(f"q{i}", "a") for i in range(9)]
    report = validate_examples(examples, max_tokens_per_example=50, encoding="estimate")
    assert report.over_limit == [0, 1, 2] and report.token_limit == 50
    per_example = [min(50, t) for t in (report.tokens.max,) * 3] + [report.tokens.min] * 9
    assert report.tokens.min < 50 < report.tokens.max
    assert report.billed_tokens == sum(per_example) * report.epochs
    assert [w.code for w in report.warnings].count("over_token_limit") == 3


def test_token_stats_use_nearest_rank_percentiles():
    examples = [chat("a" * 4 * k, "") for k in range(1, 21)]  # 20 examples, 1..20 content tokens
    report = validate_examples(examples, encoding="estimate")
    base = report.tokens.min - 1
    assert report.tokens.median == base + 10.5
    assert report.tokens.p95 == base + 19 and report.tokens.max == base + 20


def test_exact_counts_with_a_tiktoken_encoding():
    tiktoken = pytest.importorskip("tiktoken")
    byte_level = tiktoken.Encoding(name="bytes", pat_str=r"[\s\S]+",
                                   mergeable_ranks={bytes([i]): i for i in range(256)}, special_tokens={})
    counter = token_counter(encoding=byte_level)
    assert not counter.estimated and counter.name == "bytes"
    assert counter.count("Café<|endoftext|>") == len("Café<|endoftext|>".encode())
    report = validate_examples([chat("é", "ab")] * 10, encoding=byte_level)
    assert not report.tokens_estimated and report.encoding == "bytes"
    # user: 3 + 4 ("user") + 2 ("é"); assistant: 3 + 9 + 2; reply: 3
    assert report.tokens.max == 26 and report.assistant_tokens.max == 2


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("o3-mini", "o200k_base"),
        ("davinci-002", "cl100k_base"),
        (None, "cl100k_base"),  # no model named: OpenAI's data-prep default
        ("smollm2-135m-instruct", None),  # not an OpenAI model: no tiktoken encoding fits
        ("HuggingFaceTB/SmolLM2-135M-Instruct", None),
        ("/models/tiny-llama", None),
        ("olmo-2-1b", None),
    ],
)
def test_encoding_follows_the_target_model(model, encoding):
    assert encoding_name_for(model) == encoding


@pytest.mark.parametrize("model", ["smollm2-135m-instruct", "/runs/train/merged", "ft:llama-3:x::y"])
def test_a_local_model_gets_the_estimate_and_the_note_says_why(model):
    examples = ExampleSet([chat(f"Q{i}?", f"A{i}.") for i in range(10)])
    report = examples.validate(model=model)
    assert report.tokens_estimated and report.encoding == "estimate"
    assert "not an OpenAI model" in report.token_note and "not an OpenAI model" in report.to_text()
    assert report.tokens == examples.validate(encoding="estimate").tokens
    # an explicit encoding still wins
    assert not token_counter(model, encoding=FakeEncoder()).estimated


class FakeEncoder:
    name = "chars"

    def encode_ordinary(self, text):
        return list(text.encode())


def test_a_count_is_never_an_unflagged_estimate():
    counter = token_counter("gpt-4o-mini")
    if counter.estimated:  # no tiktoken, or its encoding file cannot be fetched here
        assert counter.name == "estimate" and "estimated" in counter.note
    else:
        assert counter.name == "o200k_base" and counter.note is None
    report = ExampleSet([chat()] * 10).validate("gpt-4o-mini")
    assert report.tokens_estimated == counter.estimated
    assert ("estimated" in report.to_text()) == counter.estimated


@given(n=st.integers(1, 200_000))
def test_default_epochs_rule(n):
    epochs = default_epochs(n)
    assert 1 <= epochs <= 25
    if n * 3 < 100:
        assert n * epochs >= 100 or epochs == 25
        assert epochs == min(25, math.ceil(100 / n))
    elif n * 3 > 25_000:
        assert n * epochs <= 25_000 or epochs == 1
        assert n * (epochs + 1) > 25_000
    else:
        assert epochs == 3


@pytest.mark.parametrize(("n", "epochs"), [(1, 25), (10, 10), (30, 4), (34, 3), (8_333, 3), (8_334, 2), (30_000, 1)])
def test_default_epochs_examples(n, epochs):
    assert default_epochs(n) == epochs


def test_text_report_is_readable_and_bounded():
    examples = [{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}] * 12
    text = str(validate_examples(examples, encoding="estimate"))
    assert text.startswith("Validation: 12 error(s)")
    assert "unrecognized_role: 12" in text and "... and 7 more" in text
    assert "Default epochs: 9" in text and "billed tokens: ~" in text
