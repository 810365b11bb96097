"""The shipped scale-out configurations: the full-size GPU run and the accelerate launch files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from finetunekit.config import load_config
from finetunekit.pipeline import Pipeline
from local_fixtures import smollm2_tokenizer_dir

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "configs" / "amazon_titles_full_gpu.toml"
ACCELERATE = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


def test_the_full_size_config_prepares_500_products_with_all_5_templates(tmp_path, pm):
    config = load_config(FULL)
    options = config.trainer.options
    assert options["allow_hub"] is True and not Path(options["model"]).exists()  # a hub id, allowed explicitly
    assert config.evaluation.base_model.options["model"] == options["model"]
    # the trainer's checks count tokens with the model's tokenizer: offline, the bundled model's one stands in
    tokenizer = smollm2_tokenizer_dir(tmp_path / "tokenizer")
    trainer = config.trainer.model_copy(update={"options": {**options, "model": str(tokenizer)}})
    offline = config.model_copy(update={"run_dir": str(tmp_path / "run"), "trainer": trainer})
    prepared = Pipeline(offline, plugins=pm).prepare()
    assert len(prepared.train) == 500 and len(prepared.test) == 100
    assert len(prepared.examples) == 2500
    per_row: dict = {}
    for meta in prepared.examples.metadata:
        per_row.setdefault(meta["row_id"], set()).add(meta["template"])
    assert len(per_row) == 500 and all(len(templates) == 5 for templates in per_row.values())


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_each_accelerate_config_is_valid_for_accelerate(path):
    config_args = pytest.importorskip("accelerate.commands.config.config_args")
    config = config_args.ClusterConfig.from_yaml_file(path)  # unknown keys are refused
    assert config.num_processes >= 2
    assert config.mixed_precision == "no"  # precision is the trainer's own bf16 option


def test_the_scaling_guide_names_only_shipped_files_and_the_ci_command():
    guide = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    named = set(re.findall(r"configs/[\w./-]+\.(?:yaml|toml)", guide))
    assert named >= {f"configs/accelerate/{p.name}" for p in ACCELERATE} | {"configs/amazon_titles_full_gpu.toml"}
    assert all((ROOT / name).is_file() for name in named), named
    assert "torchrun --standalone --nproc_per_node 2 -m finetunekit.cli run" in guide
