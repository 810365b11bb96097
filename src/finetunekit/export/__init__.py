"""``finetunekit export``: a fine-tuned local model as merged safetensors or as GGUF.

``merged``: ``OUT/merged/`` — base + adapter folded into one Hugging Face model directory.
``gguf``: that directory, plus ``OUT/NAME-OUTTYPE.gguf`` (llama.cpp, Ollama; the chat
template in its metadata) and ``OUT/Modelfile`` for Ollama. See :mod:`.gguf_file` for how
the GGUF is written and :mod:`.modelfile` for the Modelfile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pluggy

from finetunekit.atomic import write_text
from finetunekit.backends.local.tuned import LocalTarget
from finetunekit.errors import ConfigError


@dataclass
class ExportResult:
    """What an export wrote: the merged directory, and for GGUF the file and the Modelfile."""

    merged: Path
    gguf: Path | None = None
    modelfile: Path | None = None
    name: str = "model"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Lines telling the user what was written and how to use it."""
        lines = [f"merged model: {self.merged}"]
        if self.gguf is not None and self.modelfile is not None:
            lines += [
                f"GGUF: {self.gguf}",
                f"Ollama Modelfile: {self.modelfile}",
                f"  ollama create {self.name} -f {self.modelfile} && ollama run {self.name}",
                f"  llama-server -m {self.gguf} --port 8080   # llama.cpp, OpenAI-compatible",
            ]
        return lines + self.notes


def default_out(target: LocalTarget, given: str | Path) -> Path:
    """``RUN_DIR/export`` when ``given`` is a run or adapter directory, else ``./export-LABEL``."""
    path = Path(given)
    if target.source != "model" and path.is_dir():
        return path / "export"
    return Path(f"export-{_slug(target.label)}")


def export(target: LocalTarget, format: Literal["merged", "gguf"], *, out: str | Path | None = None,
           outtype: str = "f16", name: str | None = None, run_dir: str | Path | None = None,
           plugins: pluggy.PluginManager | None = None) -> ExportResult:
    """Export ``target`` into ``out`` (default: :func:`default_out` of ``run_dir``)."""
    from finetunekit.export.merged import write_merged

    if format not in ("merged", "gguf"):
        raise ConfigError(f"export format {format!r} is not one of: merged, gguf")
    folder = Path(out) if out is not None else default_out(target, run_dir or target.model)
    label = _slug(name or target.label)
    result = ExportResult(merged=write_merged(target, folder / "merged", plugins=plugins), name=label)
    if format == "gguf":
        _write_gguf(target, result, folder, outtype, label, plugins)
    return result


def _write_gguf(target: LocalTarget, result: ExportResult, folder: Path, outtype: str, label: str,
                plugins: pluggy.PluginManager | None) -> None:
    from finetunekit.backends.local.loading import end_of_turn_ids, load_tokenizer
    from finetunekit.export.gguf_file import write_gguf
    from finetunekit.export.modelfile import render_modelfile

    pre = source_tokenizer_pre(target.model, plugins)
    if pre is None:
        pre = "default"
        result.notes.append("note: the tokenizer's llama.cpp pre-tokenizer name is unknown; 'default' was written")
    result.gguf = write_gguf(result.merged, folder / f"{label}-{outtype}.gguf", outtype=outtype, name=label,
                             tokenizer_pre=pre)
    tokenizer = load_tokenizer(str(result.merged))
    stops = [tokenizer.convert_ids_to_tokens(i) for i in end_of_turn_ids(tokenizer)]
    result.modelfile = folder / "Modelfile"
    write_text(result.modelfile, render_modelfile(result.gguf.name, tokenizer, stops))


def source_tokenizer_pre(model: str, plugins: pluggy.PluginManager | None = None) -> str | None:
    """The llama.cpp pre-tokenizer name recorded in the GGUF a registered model ships as
    (``smollm`` for the default model); ``None`` for any other model."""
    from finetunekit.backends.local.sources import GGUFPackageSource
    from finetunekit.export.gguf_file import tokenizer_pre_of
    from finetunekit.registry import registry_for

    sources = registry_for("register_model_sources", plugins)
    source = sources.get(model) if model in sources else None
    if not isinstance(source, GGUFPackageSource):
        return None
    return tokenizer_pre_of(source.gguf_path())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "model"
