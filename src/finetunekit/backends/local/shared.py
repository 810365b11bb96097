"""One copy of a base model's weights for every local chat model in a process that uses it.

The base model and the fine-tuned one (base + LoRA adapter) answer from the same weights: the
adapter is loaded onto the shared model under a name of its own and made active for the
fine-tuned model's answers; the base model answers with every adapter disabled
(``PeftModel.disable_adapter()``), which computes exactly what the base model alone computes.
The pool holds models only while some chat model uses them (weak references), and the last one
released (:func:`park`) until a different model is loaded: the evaluator releases the base model
before the fine-tuned one answers, which then finds the same copy.
"""

from __future__ import annotations

import contextlib
import weakref
from pathlib import Path
from typing import Any, Iterator

import pluggy

from finetunekit.backends.local.loading import LoadedModel, ModelLoadingOptions, load_for_generation, pick_device
from finetunekit.backends.local.sources import resolve_model
from finetunekit.errors import ConfigError

_POOL: weakref.WeakValueDictionary[tuple[str, ...], SharedModel] = weakref.WeakValueDictionary()
#: The last shared model a chat model released (at most one), kept until a different model loads.
_PARKED: list[SharedModel] = []


def park(model: SharedModel) -> None:
    """Keep ``model``, which its chat model has just released, until a different model is loaded."""
    _PARKED[:] = [model]


class SharedModel:
    """A loaded base model and the adapters loaded onto it (each under its own name)."""

    def __init__(self, loaded: LoadedModel, *, quantized: bool = False) -> None:
        self.loaded = loaded
        self.quantized = quantized  # 4-bit weights stay where bitsandbytes placed them
        self._adapters: dict[tuple[str, str], str] = {}  # (directory, fingerprint) -> adapter name

    def add_adapter(self, directory: str | Path, fingerprint: str) -> str:
        """The name of the adapter in ``directory`` on this model (loading it the first time)."""
        key = (str(Path(directory).resolve()), fingerprint)
        if key in self._adapters:
            return self._adapters[key]
        from peft import PeftModel

        if not (Path(directory) / "adapter_config.json").is_file():
            raise ConfigError(f"adapter {str(directory)!r} is not a PEFT adapter directory (no adapter_config.json)")
        name = f"adapter{len(self._adapters)}"
        model = self.loaded.model
        if isinstance(model, PeftModel):
            model.load_adapter(str(directory), adapter_name=name)
        else:
            model = PeftModel.from_pretrained(model, str(directory), adapter_name=name)
            model = model if self.quantized else model.to(self.loaded.device)
            self.loaded.model = model
        model.eval()
        self._adapters[key] = name
        return name

    @contextlib.contextmanager
    def using(self, adapter: str | None) -> Iterator[Any]:
        """The model to generate with: ``adapter`` active, or (None) the base model's own weights."""
        from peft import PeftModel

        model = self.loaded.model
        if not isinstance(model, PeftModel):
            if adapter is not None:
                raise ConfigError(f"adapter {adapter!r} is not loaded on this model")
            yield model
        elif adapter is None:
            with model.disable_adapter():
                yield model
        else:
            model.set_adapter(adapter)
            yield model


def shared_model(
    model: str,
    *,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    allow_hub: bool = False,
    plugins: pluggy.PluginManager | None = None,
    loading: ModelLoadingOptions | None = None,
) -> SharedModel:
    """The process's shared copy of ``model`` on ``device``, loaded as ``loading`` says (dtype,
    4-bit, attention kernel; loaded on first use)."""
    loading = loading or ModelLoadingOptions()
    resolved = resolve_model(model, plugins=plugins, cache_dir=cache_dir)
    how = loading.model_dump(include=set(ModelLoadingOptions.model_fields), mode="json")
    key = (resolved, pick_device(device), *(str(how[name]) for name in sorted(how)))
    found = _POOL.get(key)
    if found is None:
        _drop_parked()  # a released model goes before another one loads
        found = SharedModel(load_for_generation(
            model, device=device, cache_dir=cache_dir, allow_hub=allow_hub, plugins=plugins, loading=loading,
        ), quantized=loading.load_in_4bit)
        _POOL[key] = found
    return found


def _drop_parked() -> None:
    """Let go of the parked model and hand its memory back (if nothing else holds it)."""
    if not _PARKED:
        return
    from finetunekit import memory

    _PARKED.clear()
    memory.collect_and_release()
