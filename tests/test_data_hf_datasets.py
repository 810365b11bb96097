"""The ``datasets`` loader: a dataset saved with save_to_disk, a Parquet file, an Arrow file,
split choice, and no hub access unless allowed."""

from __future__ import annotations

import pytest

from finetunekit.data.dataset import Dataset
from finetunekit.errors import DataError

datasets = pytest.importorskip("datasets")

ROWS = {"title": ["Red Lamp", "Blue Kettle", "Old Map"], "content": ["lights rooms", "boils water", "shows roads"]}


def expected(rows=ROWS):
    return [{**dict(zip(rows, values)), "_row_id": i} for i, values in enumerate(zip(*rows.values()), start=1)]


def test_a_dataset_saved_to_disk_loads_as_rows(pm, tmp_path):
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "saved"))
    loaded = Dataset.load(tmp_path / "saved", format="datasets", plugins=pm)
    assert loaded.records() == expected()
    assert loaded.load_report.lines_read == 3 and loaded.load_report.format == "datasets"


def test_a_parquet_file_loads_through_datasets_and_columns_map(pm, tmp_path):
    datasets.Dataset.from_dict(ROWS).to_parquet(str(tmp_path / "rows.parquet"))
    loaded = Dataset.load(tmp_path / "rows.parquet", format="datasets", columns={"title": "name"}, plugins=pm)
    assert loaded.records() == [{"name": t, "_row_id": i} for i, t in enumerate(ROWS["title"], start=1)]


def test_an_arrow_file_is_found_by_its_suffix(pm, tmp_path):
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(saved))
    arrow = next(saved.glob("*.arrow"))
    assert Dataset.load(arrow, plugins=pm).records() == expected()


def test_a_dataset_dict_gives_train_by_default_or_the_split_asked_for(pm, tmp_path):
    other = {"title": ["Green Mug"], "content": ["holds tea"]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(ROWS), "test": datasets.Dataset.from_dict(other)}).save_to_disk(
        str(tmp_path / "dd"))
    assert Dataset.load(tmp_path / "dd", format="datasets", plugins=pm).records() == expected()
    test = Dataset.load(tmp_path / "dd", format="datasets", plugins=pm, loader_options={"split": "test"})
    assert test.records() == expected(other)
    with pytest.raises(DataError, match=r"no split 'dev'; the splits are \['train', 'test'\]"):
        Dataset.load(tmp_path / "dd", format="datasets", plugins=pm, loader_options={"split": "dev"}).records()


def test_a_hub_id_is_refused_unless_the_hub_is_allowed(pm):
    with pytest.raises(DataError, match="owner/no-such-set.*allow_hub = true"):
        Dataset.load("owner/no-such-set", format="datasets", plugins=pm).records()


def test_chat_examples_from_a_saved_dataset(pm, tmp_path):
    import finetunekit

    conversations = [[{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": f"A{i}"}] for i in range(3)]
    datasets.Dataset.from_dict({"conversations": conversations}).save_to_disk(str(tmp_path / "chats"))
    examples = finetunekit.load_chat_examples(tmp_path / "chats", "sharegpt", format="datasets", plugins=pm)
    assert examples.assistant_answers() == ["A0", "A1", "A2"] and examples.validate().ok
