"""Training data that is already chat examples: OpenAI ``messages``, ShareGPT and Alpaca records.

Each record becomes one ``{"messages": [...]}`` example, with no templates and no formatter:

- ``messages``: ``{"messages": [{"role", "content"}, ...]}`` (OpenAI's fine-tuning format);
  ``tools``, ``parallel_tool_calls`` and ``functions`` are kept, other top-level keys (ids,
  sources) are left out of the example, and so are message keys whose value is null (Parquet
  and Arrow store a key absent from one message as null);
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}, ...]}``
  (``user``/``assistant`` are accepted as ``from`` too; an optional top-level ``system``
  string becomes the system message);
- ``alpaca``: ``{"instruction", "input" (optional), "output"}`` plus optional ``system`` and
  ``history`` (``[[question, answer], ...]`` turns before this one); the user message is the
  instruction, followed by the input on a new line when there is one.

A record that does not have its format's shape raises a :class:`DataError` naming the file,
line and field; the examples' structure is then checked by ``ExampleSet.validate`` as for any
other examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import pluggy

from finetunekit.data.rows import ROW_ID_FIELD
from finetunekit.errors import ConfigError, DataError
from finetunekit.examples.example_set import ExampleSet
from finetunekit.examples.validation import TOP_LEVEL_KEYS

ChatFormat = Literal["messages", "sharegpt", "alpaca"]

#: ShareGPT ``from`` values and the chat role each one is.
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class _Where:
    """Where a record came from, for error messages."""

    def __init__(self, path: str | None, line: Any) -> None:
        self.path, self.line = path, line if isinstance(line, int) else None

    def error(self, message: str, field: str | None = None) -> DataError:
        return DataError(message, path=self.path, line=self.line, field=field)


def from_messages(record: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    """An OpenAI chat record as an example: ``messages`` (and tool definitions) kept as they are."""
    if "messages" not in record:
        raise where.error(f'no "messages" key (keys: {sorted(map(str, record))}); expected '
                          '{"messages": [{"role": ..., "content": ...}, ...]}')
    example = {key: record[key] for key in TOP_LEVEL_KEYS if key in record}
    if isinstance(example["messages"], list):  # columnar stores (Parquet, Arrow) fill absent keys with None
        example["messages"] = [
            {k: v for k, v in m.items() if v is not None} if isinstance(m, Mapping) else m for m in example["messages"]
        ]
    return example


def from_sharegpt(record: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    """A ShareGPT record as an example: each ``{"from", "value"}`` turn becomes a message."""
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise where.error('expected a non-empty "conversations" list of {"from": ..., "value": ...} turns',
                          field="conversations")
    messages = []
    system = record.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _text(system, where, "system")})
    for i, turn in enumerate(turns):
        field = f"conversations[{i}]"
        if not isinstance(turn, Mapping) or "from" not in turn or "value" not in turn:
            raise where.error('expected {"from": ..., "value": ...}', field=field)
        role = SHAREGPT_ROLES.get(turn["from"])
        if role is None:
            raise where.error(f"unknown speaker {turn['from']!r}; expected one of {sorted(SHAREGPT_ROLES)}",
                              field=f"{field}.from")
        messages.append({"role": role, "content": _text(turn["value"], where, f"{field}.value")})
    return {"messages": messages}


def from_alpaca(record: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    """An Alpaca record as an example: optional system and history, then instruction (+ input) → output."""
    instruction = _text(record.get("instruction"), where, "instruction")
    output = _text(record.get("output"), where, "output")
    extra = record.get("input")
    question = f"{instruction}\n{_text(extra, where, 'input')}" if extra else instruction
    messages = []
    if record.get("system"):
        messages.append({"role": "system", "content": _text(record["system"], where, "system")})
    history = record.get("history") or []
    if not isinstance(history, list):
        raise where.error("expected a list of [question, answer] pairs", field="history")
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise where.error("expected a [question, answer] pair", field=f"history[{i}]")
        messages.append({"role": "user", "content": _text(pair[0], where, f"history[{i}][0]")})
        messages.append({"role": "assistant", "content": _text(pair[1], where, f"history[{i}][1]")})
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": output}]
    return {"messages": messages}


CONVERTERS: dict[str, Callable[[Mapping[str, Any], _Where], dict[str, Any]]] = {
    "messages": from_messages,
    "sharegpt": from_sharegpt,
    "alpaca": from_alpaca,
}


def _text(value: Any, where: _Where, field: str) -> str:
    if not isinstance(value, str):
        raise where.error(f"expected a string, got {type(value).__name__}", field=field)
    return value


def chat_example(record: Mapping[str, Any], chat_format: str, *, path: str | Path | None = None,
                 line: Any = None) -> dict[str, Any]:
    """One record of ``chat_format`` as a ``{"messages": [...]}`` example; a record without its
    format's shape raises a :class:`DataError` naming ``path``, ``line`` and the field."""
    converter = converter_for(chat_format)
    where = _Where(str(path) if path is not None else None, line)
    if not isinstance(record, Mapping):
        raise where.error(f"expected an object, got {type(record).__name__}")
    return converter(record, where)


def converter_for(chat_format: str) -> Callable[[Mapping[str, Any], _Where], dict[str, Any]]:
    """The converter of ``chat_format``; an unknown name is a :class:`ConfigError`."""
    if chat_format not in CONVERTERS:
        raise ConfigError(f"unknown chat format {chat_format!r}; expected one of {sorted(CONVERTERS)}")
    return CONVERTERS[chat_format]


def chat_rows(dataset: Any, chat_format: str, source: str | Path) -> Any:
    """``dataset`` (rows of ``source``) with each row turned into an example row: the
    example's keys plus ``_row_id`` (streamed; a bad row raises as it is reached)."""
    converter_for(chat_format)

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in row.items() if k != ROW_ID_FIELD}
        return chat_example(fields, chat_format, path=source, line=row.get(ROW_ID_FIELD))

    return dataset.map(convert, name=f"chat_format:{chat_format}")


def examples_from_rows(rows: Any, source: str | Path | None = None, *, system: str | None = None) -> ExampleSet:
    """An ExampleSet of example rows (from :func:`chat_rows`): metadata gives each example's
    ``row_id`` and, when ``source`` is given, the file and line (row number) it came from.
    ``system``: a system message put first in every example that has none."""
    examples, metadata = [], []
    for row in rows:
        example = {k: v for k, v in row.items() if k != ROW_ID_FIELD}
        messages = example.get("messages")
        if system is not None and isinstance(messages, list) and not any(
            isinstance(m, Mapping) and m.get("role") == "system" for m in messages
        ):
            example["messages"] = [{"role": "system", "content": system}, *messages]
        examples.append(example)
        row_id = row.get(ROW_ID_FIELD)
        meta: dict[str, Any] = {"row_id": row_id}
        if source is not None:
            meta.update(source=str(source), line=row_id if isinstance(row_id, int) else None)
        metadata.append(meta)
    return ExampleSet(examples, metadata)


def load_chat_examples(
    source: str | Path,
    chat_format: ChatFormat,
    *,
    format: str | None = None,
    limit: int | None = None,
    loader_options: Mapping[str, Any] | None = None,
    plugins: pluggy.PluginManager | None = None,
) -> ExampleSet:
    """Read chat examples from ``source`` through any dataset loader (JSON Lines, Parquet,
    ``datasets``, …; ``format`` names one, default: by suffix) and convert them from
    ``chat_format``. Check them with :meth:`ExampleSet.validate` as any other examples."""
    from finetunekit.data.dataset import Dataset

    rows = Dataset.load(source, format=format, limit=limit, plugins=plugins, loader_options=loader_options)
    return examples_from_rows(chat_rows(rows, chat_format, source), source)
