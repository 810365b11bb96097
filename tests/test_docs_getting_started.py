"""The Python walk-through in docs/getting-started.md runs as written (on a tiny model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline_support import make_tiny_model

DOC = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"


def test_the_stages_walk_through_runs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    code = re.search(r"## The stages in Python\n\n```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert code, "docs/getting-started.md lost its Python walk-through"
    model = make_tiny_model(tmp_path / "assets")
    source = code.group(1).replace('"smollm2-135m-instruct"', repr(str(model))).replace("epochs=12", "epochs=1")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    report = namespace["report"]
    assert set(report.summary["model"]) == {"base", "fine-tuned"}
    assert (tmp_path / "runs" / "demo" / "report" / "report.html").is_file()
    assert (tmp_path / "runs" / "demo" / "train.jsonl").is_file()
