"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node 2`` (gloo on CPU): exercises
finetunekit.distributed's helpers in real processes and writes what each rank saw to OUT/rank{N}.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finetunekit import distributed
from finetunekit.chat import ChatModel
from finetunekit.errors import ConfigError


class EchoModel(ChatModel):
    """Answers "<question> (rank N)" and remembers what this process generated."""

    name = "echo"

    def __init__(self, options=None, *, plugins=None):
        super().__init__(options, plugins=plugins)
        self.generated: list[str] = []

    def generate(self, conversations):
        questions = [c[-1]["content"] for c in conversations]
        self.generated += questions
        return [f"{q} (rank {distributed.rank()})" for q in questions]


class HostedEchoModel(EchoModel):
    """The same, answered by rank 0 alone (as a hosted API's chat model is)."""

    name = "hosted-echo"
    split_answers = False


def outcome(fn):
    """``{"value": ...}`` or ``{"error": [type name, message]}``."""
    try:
        return {"value": fn()}
    except Exception as exc:  # noqa: BLE001 - what each rank saw is the result
        return {"error": [type(exc).__name__, str(exc)]}


def main(out: Path) -> None:
    me = distributed.rank()
    seen: dict = {"rank": me, "world_size": distributed.world_size(), "launched": distributed.launched()}
    seen["split"] = distributed.split_map(lambda share: [[item, distributed.rank()] for item in share], range(7))
    seen["from_main"] = distributed.from_main(lambda: f"chosen by rank {distributed.rank()}")
    written = out / "written.txt"
    seen["main_first"] = distributed.main_first(
        lambda: written.write_text("rank 0 wrote this") and "wrote", others=lambda: written.read_text()
    )

    def fail_on_main():
        if distributed.is_main_process():
            raise ConfigError("data.csv, line 3: bad row")
        return "never used"

    seen["main_error"] = outcome(lambda: distributed.main_first(fail_on_main))

    def fail_on_rank_1(share):
        if distributed.rank() == 1:
            raise ValueError(f"rank 1 failed on {share}")
        return share

    seen["split_error"] = outcome(lambda: distributed.split_map(fail_on_rank_1, [1, 2, 3, 4]))
    questions = [f"q{i}" for i in range(5)]
    with distributed.split_work():
        seen["work_is_split"] = distributed.work_is_split()
        for cls in (EchoModel, HostedEchoModel):
            model = cls.from_options({"answer_cache_dir": str(out / "cache" / cls.name)})
            first = model.answer(questions)
            second = model.answer(questions + ["q5"])  # five cached (read by rank 0), one new
            seen[cls.name] = {"answers": second, "first": first, "generated": model.generated}
    seen["work_is_split_after"] = distributed.work_is_split()
    distributed.barrier()
    (out / f"rank{me}.json").write_text(json.dumps(seen), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
