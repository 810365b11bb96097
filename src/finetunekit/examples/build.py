"""``build_examples``: rows → chat examples, with questions from a PromptGenerator and answers
from a ResponseFormatter."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import pluggy

from finetunekit.data.rows import ROW_ID_FIELD
from finetunekit.errors import ConfigError, DataError, TemplateError
from finetunekit.examples.example_set import ExampleSet, OnError, Skipped, check_on_error
from finetunekit.examples.formatters import ResponseFormatter, resolve_formatter
from finetunekit.examples.prompts import PromptGenerator, PromptTemplateSet, Question


def build_examples(
    dataset: Iterable[Mapping[str, Any]],
    prompts: PromptGenerator | PromptTemplateSet | str | Sequence[str],
    formatter: ResponseFormatter | str,
    system: str | None = None,
    *,
    expand: bool = False,
    questions_per_row: int | str = 1,
    on_error: OnError = "raise",
    progress: bool | None = None,
    plugins: pluggy.PluginManager | None = None,
) -> ExampleSet:
    """Turn each row into a chat example: [system], user question, assistant answer.

    ``prompts`` is a PromptGenerator or what it accepts (a template-set name, a set, a list of
    templates; seed 0). ``formatter`` is a ResponseFormatter, a registered formatter name or a
    template string. ``questions_per_row=k`` makes ``k`` examples per row, each asked with a
    different template chosen by the generator's seed (``"all"``, or ``expand=True``: every
    template). A row missing a
    field raises :class:`TemplateError` naming the row and field, or with ``on_error="skip"``
    is left out and listed in ``ExampleSet.skipped``. ``progress`` shows a bar (default: on a
    terminal only).
    """
    check_on_error(on_error)
    generator = prompts if isinstance(prompts, PromptGenerator) else PromptGenerator(prompts, plugins=plugins)
    answerer = resolve_formatter(formatter, plugins=plugins)
    if system is not None and (not isinstance(system, str) or not system.strip()):
        raise ConfigError(f"system must be a non-empty string or None, got {system!r}")
    head = [{"role": "system", "content": system}] if system is not None else []
    examples: list[dict[str, Any]] = []
    metadata: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    for index, row in enumerate(_progress(dataset, progress)):
        try:
            questions, answer = _row_parts(row, index, generator, answerer, "all" if expand else questions_per_row)
        except (TemplateError, DataError) as exc:
            if on_error == "raise":
                raise
            skipped.append(Skipped(f"row {_row_name(row, index)}", str(exc)))
            continue
        for question in questions:
            examples.append({"messages": [*head, {"role": "user", "content": question.text},
                                          {"role": "assistant", "content": answer}]})
            metadata.append({"row_id": question.row_id, "template": question.template})
    return ExampleSet(examples, metadata, skipped=skipped)


def _row_parts(
    row: Any, index: int, generator: PromptGenerator, answerer: ResponseFormatter, k: int | str
) -> tuple[list[Question], str]:
    if not isinstance(row, Mapping):
        raise DataError(f"row {index} is a {type(row).__name__}, expected a mapping of field names to values")
    questions = generator.questions_for(row, index, k)
    try:
        answer = answerer.format(row)
    except TemplateError as exc:
        if ROW_ID_FIELD in row:
            raise
        raise TemplateError(f"row {index} (position in the dataset): {exc}") from exc
    if not isinstance(answer, str):
        raise TemplateError(f"formatter {answerer!r} returned {type(answer).__name__} for row "
                            f"{_row_name(row, index)}, expected str")
    return questions, answer


def _row_name(row: Any, index: int) -> str:
    return repr(row.get(ROW_ID_FIELD, index)) if isinstance(row, Mapping) else str(index)


def _progress(rows: Iterable[Any], enabled: bool | None) -> Iterable[Any]:
    from tqdm.auto import tqdm

    total = len(rows) if hasattr(rows, "__len__") else None  # type: ignore[arg-type]
    return tqdm(rows, total=total, desc="Building examples", unit="row", disable=None if enabled is None else not enabled)
