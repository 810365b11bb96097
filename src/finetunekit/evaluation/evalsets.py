"""Eval sets: the questions every model answers, each with its references and source row.

Three splits, built by :func:`build_eval_sets`:

- ``train-questions``: the exact conversations trained on (from an ``ExampleSet``);
- ``paraphrased``: the same products, asked with a template set disjoint from training;
- ``unseen-products``: held-out rows (e.g. the test half of ``Dataset.split``).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pluggy

from finetunekit.errors import ConfigError, DataError
from finetunekit.examples.formatters import ResponseFormatter, resolve_formatter
from finetunekit.examples.prompts import ROW_ID_FIELD, PromptGenerator, PromptTemplateSet, resolve_template_set

TRAIN_QUESTIONS = "train-questions"
PARAPHRASED = "paraphrased"
UNSEEN_PRODUCTS = "unseen-products"
SPLITS = (TRAIN_QUESTIONS, PARAPHRASED, UNSEEN_PRODUCTS)


@dataclass(frozen=True)
class EvalItem:
    """One question to ask, with everything a metric may compare the answer with.

    ``messages`` is the conversation sent to the model (an optional system message, then the
    user question); ``target`` the whole formatted answer; ``content`` the knowledge part of
    it (the target after ``prefix``, its fixed opening, ``None`` when the formatter has none); ``row_id`` and ``template`` say where
    the question came from.
    """

    split: str
    messages: tuple[Mapping[str, str], ...]
    question: str
    target: str
    content: str
    prefix: str | None
    row_id: Any
    template: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The item as a plain dict (messages as a list)."""
        data = asdict(self)
        data["messages"] = [dict(m) for m in self.messages]
        return data


@dataclass
class EvalSet:
    """A named list of :class:`EvalItem` (one split)."""

    name: str
    items: list[EvalItem] = field(default_factory=list)
    description: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[EvalItem]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"EvalSet({self.name!r}, {len(self.items)} items)"


def make_item(
    split: str,
    row: Mapping[str, Any],
    messages: Sequence[Mapping[str, str]],
    formatter: ResponseFormatter,
    *,
    row_id: Any,
    template: str | None,
) -> EvalItem:
    """An :class:`EvalItem` for ``row`` asked with ``messages``; references come from ``formatter``."""
    target = formatter.format(row)
    prefix = formatter.prefix(row)
    content = target[len(prefix):].strip() if prefix and target.startswith(prefix) else target
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return EvalItem(
        split=split,
        messages=tuple(dict(m) for m in messages),
        question=question,
        target=target,
        content=content,
        prefix=prefix,
        row_id=row_id,
        template=template,
    )


def build_eval_sets(
    examples: Any = None,
    test_dataset: Any = None,
    *,
    train_dataset: Any = None,
    formatter: str | ResponseFormatter | None = None,
    prompts: str | PromptTemplateSet | Sequence[str] | None = None,
    paraphrase_prompts: str | PromptTemplateSet | Sequence[str] | None = None,
    system: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    plugins: pluggy.PluginManager | None = None,
) -> list[EvalSet]:
    """The three eval sets (those whose inputs are given), in the order of :data:`SPLITS`.

    - ``examples``: the ``ExampleSet`` trained on (its ``metadata`` gives each example's row id
      and template). With ``train_dataset`` (the rows it was built from) it makes
      ``train-questions`` and ``paraphrased``.
    - ``test_dataset``: held-out rows for ``unseen-products``.
    - ``formatter``: the response formatter used for training (name, template or instance); required.
    - ``prompts``: templates for ``unseen-products``; default: those the examples were built with
      (required when there are no examples).
    - ``paraphrase_prompts``: templates for ``paraphrased``, which must share none with training
      (checked); without them there is no ``paraphrased`` split.
    - ``system``: system message for the new questions; default: the training examples' own.
    - ``limit``: at most this many items per split, chosen deterministically from ``seed``;
      ``paraphrased`` asks about the products of the chosen ``train-questions``.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be a positive number of items, got {limit!r}")
    if examples is None and test_dataset is None:
        raise ConfigError("build_eval_sets needs the training examples, a test dataset, or both")
    if formatter is None:
        raise ConfigError("build_eval_sets needs the formatter the examples were built with (formatter=...)")
    fmt = resolve_formatter(formatter, plugins=plugins)
    sets: list[EvalSet] = []
    trained_templates: list[str] = []
    trained_ids: set[Any] = set()
    if examples is not None:
        if train_dataset is None:
            raise ConfigError("train_dataset is needed with examples: the rows the examples were built from")
        all_items, rows_by_id = _train_items(examples, train_dataset, fmt)
        trained_templates = sorted({i.template for i in all_items if i.template is not None})
        # one trained question per product (the first), however many each was trained with
        all_items = list({item.row_id: item for item in reversed(all_items)}.values())[::-1]
        train_items = _choose(all_items, limit, seed)
        trained_ids = set(rows_by_id)
        if system is None:
            system = _system_of(train_items)
        sets.append(EvalSet(TRAIN_QUESTIONS, train_items, "the exact questions trained on"))
        if paraphrase_prompts is not None:
            paraphrase_set = resolve_template_set(paraphrase_prompts, plugins=plugins)
            _check_disjoint(paraphrase_set, trained_templates, prompts, plugins)
            product_ids = list(dict.fromkeys(i.row_id for i in train_items))
            rows = [rows_by_id[row_id] for row_id in product_ids]
            generator = PromptGenerator(paraphrase_set, seed=seed, plugins=plugins)
            sets.append(EvalSet(PARAPHRASED, _asked(PARAPHRASED, rows, product_ids, generator, fmt, system),
                                f"the same products asked with {paraphrase_set.name!r}, never used in training"))
    if test_dataset is not None:
        test_rows = _rows(test_dataset)
        ids = [row.get(ROW_ID_FIELD, index) for index, row in enumerate(test_rows)]
        _check_unseen(test_rows, trained_ids)
        chosen = _choose(list(zip(ids, test_rows)), limit, seed)
        template_set = _unseen_templates(prompts, trained_templates, plugins)
        generator = PromptGenerator(template_set, seed=seed, plugins=plugins)
        items = _asked(UNSEEN_PRODUCTS, [r for _, r in chosen], [i for i, _ in chosen], generator, fmt, system)
        sets.append(EvalSet(UNSEEN_PRODUCTS, items, "products held out of training"))
    return sets


def _rows(data: Any) -> list[Mapping[str, Any]]:
    """Row dicts from a Dataset (``records()``), a DataFrame, or an iterable of mappings."""
    if hasattr(data, "records"):
        return list(data.records())
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        return data.to_dict("records")
    return list(data)


def _train_items(
    examples: Any, train_dataset: Any, fmt: ResponseFormatter
) -> tuple[list[EvalItem], dict[Any, Mapping[str, Any]]]:
    """``train-questions`` items from an ExampleSet-like object, and the train rows by id."""
    example_dicts = list(getattr(examples, "examples", examples))
    metadata = getattr(examples, "metadata", None)
    if metadata is None or len(metadata) != len(example_dicts):
        raise ConfigError(
            "train-questions need each example's source row id: pass the ExampleSet returned by "
            "build_examples (its .metadata holds {'row_id', 'template'} per example)"
        )
    rows_by_id = {row.get(ROW_ID_FIELD, index): row for index, row in enumerate(_rows(train_dataset))}
    used: dict[Any, Mapping[str, Any]] = {}
    items = []
    for index, (example, meta) in enumerate(zip(example_dicts, metadata)):
        messages = list(example.get("messages", []))
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
        if last_user is None:
            raise DataError(f"example {index} has no user message", field="messages")
        row_id = meta.get("row_id")
        if row_id not in rows_by_id:
            raise DataError(
                f"example {index} was built from row {row_id!r}, which train_dataset lacks; "
                "pass the dataset the examples were built from", field="row_id",
            )
        row = used[row_id] = rows_by_id[row_id]
        item = make_item(TRAIN_QUESTIONS, row, messages[: last_user + 1], fmt,
                         row_id=row_id, template=meta.get("template"))
        trained = [m["content"] for m in messages[last_user + 1:] if m.get("role") == "assistant"]
        if trained and trained[-1] != item.target:
            raise ConfigError(
                f"example {index} (row {row_id!r}) was trained on the answer {trained[-1][:80]!r}…, but the "
                f"formatter gives {item.target[:80]!r}…; pass the formatter used to build the examples"
            )
        items.append(item)
    return items, used


def _asked(
    split: str, rows: Sequence[Mapping[str, Any]], row_ids: Sequence[Any],
    generator: PromptGenerator, fmt: ResponseFormatter, system: str | None,
) -> list[EvalItem]:
    """One item per row, its question made by ``generator``."""
    head = [{"role": "system", "content": system}] if system else []
    questions = generator.questions(rows)
    return [
        make_item(split, row, [*head, {"role": "user", "content": q.text}], fmt, row_id=row_id, template=q.template)
        for row, row_id, q in zip(rows, row_ids, questions)
    ]


def _choose(items: list[Any], limit: int | None, seed: int) -> list[Any]:
    """At most ``limit`` of ``items``, drawn with ``seed``, in their original order."""
    if limit is None or len(items) <= limit:
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def _system_of(items: Iterable[EvalItem]) -> str | None:
    """The system message the first training example was asked with, if any."""
    for item in items:
        return next((m["content"] for m in item.messages if m["role"] == "system"), None)
    return None


def _check_disjoint(
    paraphrase_set: PromptTemplateSet, trained: Sequence[str], prompts: Any, plugins: Any
) -> None:
    """Raise if a paraphrase template was also a training template."""
    training = set(trained)
    if prompts is not None:
        training |= set(resolve_template_set(prompts, plugins=plugins).templates)
    shared = sorted(training & set(paraphrase_set.templates))
    if shared:
        raise ConfigError(
            f"paraphrase template set {paraphrase_set.name!r} shares templates with training: "
            f"{shared}; paraphrased questions must use templates never trained on"
        )


def _check_unseen(test_rows: Sequence[Mapping[str, Any]], trained_ids: set[Any]) -> None:
    """Raise if a held-out row (with a real row id) was trained on."""
    overlap = sorted(
        {str(row[ROW_ID_FIELD]) for row in test_rows if ROW_ID_FIELD in row and row[ROW_ID_FIELD] in trained_ids}
    )
    if overlap:
        raise ConfigError(
            f"{len(overlap)} rows of test_dataset were trained on (row ids {overlap[:5]}…); "
            "unseen-products must come from held-out rows, e.g. the test half of Dataset.split"
        )


def _unseen_templates(prompts: Any, trained: Sequence[str], plugins: Any) -> PromptTemplateSet:
    """``prompts`` if given, else the templates training used."""
    if prompts is not None:
        return resolve_template_set(prompts, plugins=plugins)
    if trained:
        return PromptTemplateSet(name="training-templates", templates=tuple(trained))
    raise ConfigError("unseen-products needs question templates: pass prompts= (no training examples to take them from)")
