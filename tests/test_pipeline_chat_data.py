"""Chat data brought as it is (OpenAI messages, ShareGPT, Alpaca) runs through the pipeline,
checked on the torch-free fake backend: no templates or formatter, held-out conversations
for evaluation and validation, errors that name the file and line."""

from __future__ import annotations

import json

import pytest

from finetunekit.errors import ConfigError, DataError
from finetunekit.pipeline import Pipeline
from finetunekit.testing import fake_backend


@pytest.fixture
def pm(pm):
    pm.register(fake_backend)
    return pm


def facts(n):
    return [(f"What does gadget {i} do?", f"Gadget {i} sorts part {i * 7}.") for i in range(n)]


def messages_record(question, answer):
    return {"id": question[-4:], "messages": [{"role": "user", "content": question},
                                                {"role": "assistant", "content": answer}]}


def sharegpt_record(question, answer):
    return {"conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}


def alpaca_record(question, answer):
    return {"instruction": question, "input": "", "output": answer}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def chat_config(tmp_path, source, chat_format, **dataset):
    return {
        "run_dir": str(tmp_path / "run"), "seed": 3,
        "dataset": {"source": str(source), "chat_format": chat_format, "test_size": 3, **dataset},
        "trainer": {"name": "fake", "options": {}},
        "evaluation": {"base_model": {"name": "fake"}, "metrics": ["exact_match", "format"]},
    }


@pytest.mark.parametrize("chat_format, record", [
    ("messages", messages_record), ("sharegpt", sharegpt_record), ("alpaca", alpaca_record),
])
def test_chat_examples_train_and_are_evaluated_without_templates(pm, tmp_path, chat_format, record):
    pairs = facts(12)
    source = write_jsonl(tmp_path / "chats.jsonl", [record(q, a) for q, a in pairs])
    pipeline = Pipeline.from_config(chat_config(tmp_path, source, chat_format, validation_size=2), plugins=pm)
    report = pipeline.run()
    prepared = pipeline.prepare()
    trained = prepared.examples
    assert len(trained) == 7 and len(prepared.validation_examples) == 2 and len(prepared.test) == 3
    # the examples are the records' own conversations, each with its file line
    by_question = dict(pairs)
    for example, meta in zip(trained.examples, trained.metadata):
        question, answer = (m["content"] for m in example["messages"])
        assert by_question[question] == answer
        assert pairs[meta["line"] - 1] == (question, answer) and meta["source"] == str(source)
    # held-out conversations: disjoint from training, validation and each other
    trained_ids = {m["row_id"] for m in trained.metadata}
    validation_ids = {m["row_id"] for m in prepared.validation_examples.metadata}
    test_ids = {r["_row_id"] for r in prepared.test.records()}
    assert not (trained_ids & validation_ids or trained_ids & test_ids or validation_ids & test_ids)
    tuned = pipeline.train()
    assert tuned.details["validation_examples"] == 2
    # the fine-tuned fake answers every trained question exactly, and no held-out one
    assert report.value("fine-tuned", "train-questions", "exact_match") == 1.0
    assert report.value("fine-tuned", "unseen-products", "exact_match") == 0.0
    assert "paraphrased" not in report.splits
    assert (tmp_path / "run" / "examples" / "validation_set.jsonl").read_text().count("\n") == 2


def test_a_rerun_reuses_the_prepared_chat_examples(pm, tmp_path):
    source = write_jsonl(tmp_path / "chats.jsonl", [sharegpt_record(q, a) for q, a in facts(10)])
    first = Pipeline.from_config(chat_config(tmp_path, source, "sharegpt", validation_size=2), plugins=pm)
    first.run()
    again = Pipeline.from_config(chat_config(tmp_path, source, "sharegpt", validation_size=2), plugins=pm).prepare()
    assert again.examples.fingerprint() == first.prepare().examples.fingerprint()
    assert again.validation_examples.fingerprint() == first.prepare().validation_examples.fingerprint()
    assert fake_backend.training_counts(tmp_path / "run" / "train") == {"trained": 1, "resumed": 0}


def test_a_record_of_the_wrong_shape_names_its_file_and_line(pm, tmp_path):
    records = [sharegpt_record(q, a) for q, a in facts(6)]
    records[3]["conversations"][1]["from"] = "robot"
    source = write_jsonl(tmp_path / "chats.jsonl", records)
    with pytest.raises(DataError, match=r"chats\.jsonl, line 4, field 'conversations\[1\]\.from': unknown speaker 'robot'"):
        Pipeline.from_config(chat_config(tmp_path, source, "sharegpt", test_size=1), plugins=pm).prepare()


def test_structural_errors_are_reported_with_their_line_and_stop_the_run(pm, tmp_path):
    records = [messages_record(q, a) for q, a in facts(8)]
    records[5]["messages"][1]["role"] = "bot"
    source = write_jsonl(tmp_path / "chats.jsonl", records)
    with pytest.raises(ConfigError, match=r"line 6: \[unrecognized_role\]"):
        Pipeline.from_config(chat_config(tmp_path, source, "messages", test_size=1, sample_size=8), plugins=pm).prepare()


def test_the_config_system_message_goes_first_where_a_conversation_has_none(pm, tmp_path):
    source = write_jsonl(tmp_path / "chats.jsonl", [messages_record(q, a) for q, a in facts(6)])
    config = {**chat_config(tmp_path, source, "messages", test_size=1), "system": "Be brief."}
    prepared = Pipeline.from_config(config, plugins=pm).prepare()
    assert all(e["messages"][0] == {"role": "system", "content": "Be brief."} for e in prepared.examples)


@pytest.mark.parametrize("extra, named", [
    ({"formatter": "About {title}"}, "formatter"),
    ({"prompts": {"train": "amazon-product"}}, "prompts"),
    ({"evaluation": {"base_model": {"name": "fake"}, "abstain": True}}, "evaluation.abstain"),
])
def test_tabular_settings_are_refused_with_chat_data(pm, tmp_path, extra, named):
    source = write_jsonl(tmp_path / "chats.jsonl", [messages_record(q, a) for q, a in facts(6)])
    with pytest.raises(ConfigError, match=f"chat_format = 'messages'.*{named}"):
        Pipeline.from_config({**chat_config(tmp_path, source, "messages"), **extra}, plugins=pm)


def test_tabular_rows_still_need_prompts_and_a_formatter(pm, tmp_path):
    config = chat_config(tmp_path, tmp_path / "rows.jsonl", None)
    with pytest.raises(ConfigError, match="prompts: Field required; formatter: Field required"):
        Pipeline.from_config(config, plugins=pm)


@pytest.mark.parametrize("field, value", [("validation_size", 2), ("chat_format", "sharegpt"), ("loader_options", {"split": "x"})])
def test_the_new_dataset_fields_are_part_of_the_prepare_fingerprint_when_set(pm, tmp_path, field, value):
    from finetunekit.config import parse_config

    base = chat_config(tmp_path, tmp_path / "chats.jsonl", "messages")
    changed = {**base, "dataset": {**base["dataset"], field: value}}
    assert parse_config(changed).stage_fingerprints(pm)["prepare"] != parse_config(base).stage_fingerprints(pm)["prepare"]
