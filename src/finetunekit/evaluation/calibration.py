"""The questions a fine-tuned model answers to calibrate its abstention threshold.

``known``: products it was trained on, asked with a training template that product was not
trained with when there is one (new wording, as a user would ask), else its trained question.
``unknown``: the calibration rows — held-out products, never the eval split's — asked with
training templates. Neither uses the paraphrase templates, which are kept for evaluation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from finetunekit.data.rows import ROW_ID_FIELD
from finetunekit.errors import ConfigError
from finetunekit.examples.prompts import PromptGenerator


@dataclass
class CalibrationQuestions:
    """Conversations about known and about unknown products, with the row ids they ask about."""

    known: list[list[dict[str, str]]]
    unknown: list[list[dict[str, str]]]
    known_ids: list[Any]
    unknown_ids: list[Any]


def calibration_questions(
    examples: Any,
    train_rows: Sequence[Mapping[str, Any]],
    calibration_rows: Sequence[Mapping[str, Any]],
    prompts: PromptGenerator,
    *,
    system: str | None = None,
    n_known: int | None = None,
    seed: int = 0,
) -> CalibrationQuestions:
    """Calibration conversations (see the module doc); ``n_known`` trained products at most
    (default: twice the calibration rows), chosen with ``seed``."""
    if not calibration_rows:
        raise ConfigError("abstention needs calibration rows: held-out products (dataset.calibration_size)")
    trained: dict[Any, set[str]] = {}
    for meta in examples.metadata:
        if not meta.get("negative"):
            trained.setdefault(meta.get("row_id"), set()).add(meta.get("template"))
    calibration_ids = {row.get(ROW_ID_FIELD) for row in calibration_rows}
    if calibration_ids & set(trained):
        raise ConfigError("calibration rows overlap the training rows; they must be held out")
    rows = [row for row in train_rows if row.get(ROW_ID_FIELD) in trained]
    count = min(len(rows), n_known if n_known is not None else 2 * len(calibration_rows))
    rows = random.Random(seed).sample(rows, count)
    head = [{"role": "system", "content": system}] if system else []

    def asked(question: str) -> list[dict[str, str]]:
        return [*head, {"role": "user", "content": question}]

    known = []
    for index, row in enumerate(rows):
        options = prompts.questions_for(row, index, "all")
        fresh = [q for q in options if q.template not in trained[row.get(ROW_ID_FIELD)]]
        known.append(asked((fresh or options)[0].text if fresh else prompts.question(row, index).text))
    unknown = [asked(prompts.question(row, index).text) for index, row in enumerate(calibration_rows)]
    return CalibrationQuestions(
        known, unknown, [row.get(ROW_ID_FIELD) for row in rows], [row.get(ROW_ID_FIELD) for row in calibration_rows]
    )
