"""Which local model a command means: a run directory, an adapter directory, or a model name.

``finetunekit serve`` and ``finetunekit export`` take one argument that may be a pipeline run
directory (``RUN_DIR/train/fine_tuned_model.json``), a local trainer's run directory
(``training.json``), a PEFT adapter directory (its ``adapter_config.json`` names the base), or
a model name/directory (plus ``adapter=``). This module turns it into the options of the
``local`` chat model, without loading anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetunekit.errors import ConfigError
from finetunekit.training import FineTunedModel

#: Files that record a finished run's fine-tuned model, relative to the run directory.
RESULT_FILES = ("train/fine_tuned_model.json", "training.json")


@dataclass(frozen=True)
class LocalTarget:
    """A local model to load: ``model`` (name or directory), an optional ``adapter`` directory,
    the model cache, and a short ``label`` (the served model id, the export's file name)."""

    model: str
    adapter: str | None = None
    cache_dir: str | None = None
    label: str = "model"
    source: str = field(default="model", compare=False)

    def chat_options(self) -> dict[str, Any]:
        """Options of the ``local`` chat model that load this target."""
        options: dict[str, Any] = {"model": self.model, "adapter": self.adapter}
        if self.cache_dir is not None:
            options["cache_dir"] = self.cache_dir
        return options


def resolve_target(target: str | Path, *, adapter: str | Path | None = None, cache_dir: str | None = None) -> LocalTarget:
    """The local model ``target`` names (see the module docstring); ``adapter`` goes with a
    model name or directory only. Raises :class:`ConfigError` for a run that was not trained
    locally, or for an adapter given together with a run directory."""
    path = Path(target).expanduser()
    result = next((path / name for name in RESULT_FILES if (path / name).is_file()), None) if path.is_dir() else None
    if result is not None:
        if adapter is not None:
            raise ConfigError(f"{path} is a run directory, which names its own adapter; drop --adapter")
        return _from_run(result, path, cache_dir)
    if path.is_dir() and (path / "adapter_config.json").is_file() and adapter is None:
        return _from_adapter(path, cache_dir)
    if path.is_dir() and not (path / "config.json").is_file():
        raise ConfigError(
            f"{path} is neither a run directory (no {' or '.join(RESULT_FILES)}), nor a PEFT adapter "
            "(no adapter_config.json), nor a model directory (no config.json)"
        )
    label = path.name if path.is_dir() else str(target)
    if adapter is not None:
        adapter_dir = Path(adapter).expanduser()
        if not (adapter_dir / "adapter_config.json").is_file():
            raise ConfigError(f"--adapter {str(adapter_dir)!r} is not a PEFT adapter directory (no adapter_config.json)")
        return LocalTarget(model=str(target), adapter=str(adapter_dir), cache_dir=cache_dir,
                           label=f"{label}+{adapter_dir.name}")
    return LocalTarget(model=str(target), cache_dir=cache_dir, label=label)


def _from_run(result: Path, run_dir: Path, cache_dir: str | None) -> LocalTarget:
    try:
        tuned = FineTunedModel.model_validate_json(result.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{result}: not a fine-tuned model record ({exc})") from exc
    if tuned.backend != "local":
        raise ConfigError(
            f"{run_dir} was fine-tuned with the {tuned.backend!r} backend; only locally trained models "
            f"can be served or exported here (its model: {tuned.model})"
        )
    options = tuned.chat_options
    return LocalTarget(model=str(options.get("model", tuned.base_model)), adapter=options.get("adapter"),
                       cache_dir=cache_dir or options.get("cache_dir"), label=run_dir.resolve().name,
                       source=str(result))


def _from_adapter(adapter_dir: Path, cache_dir: str | None) -> LocalTarget:
    config_file = adapter_dir / "adapter_config.json"
    try:
        base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except ValueError as exc:
        raise ConfigError(f"{config_file}: not valid JSON ({exc})") from exc
    if not base:
        raise ConfigError(f"{config_file} names no base model (base_model_name_or_path); give MODEL --adapter {adapter_dir}")
    return LocalTarget(model=str(base), adapter=str(adapter_dir), cache_dir=cache_dir,
                       label=adapter_dir.resolve().name, source=str(config_file))
