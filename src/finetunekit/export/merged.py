"""Base model + LoRA adapter folded into one model directory (safetensors + tokenizer).

The result loads with ``AutoModelForCausalLM.from_pretrained(dir)`` anywhere, with no
finetunekit and no peft; it is also what the GGUF converter reads. Written into a temporary
directory and renamed into place, so a crash never leaves half a model.
"""

from __future__ import annotations

from pathlib import Path
import pluggy

from finetunekit.atomic import atomic_directory
from finetunekit.backends.local.tuned import LocalTarget

#: The file written last into a merged directory; it names what was merged.
MERGED_MARKER = "finetunekit-export.json"


def write_merged(target: LocalTarget, out_dir: str | Path, *, plugins: pluggy.PluginManager | None = None) -> Path:
    """Merge ``target``'s adapter into its base model (float32) and save both model and
    tokenizer to ``out_dir``; a target without an adapter is saved as it is."""
    import json

    import torch

    from finetunekit.backends.local.loading import load_for_generation, load_tokenizer

    loaded = load_for_generation(target.model, adapter=target.adapter, device="cpu", cache_dir=target.cache_dir,
                                 plugins=plugins, dtype=torch.float32, merge_adapter=True)
    # the adapter directory holds the tokenizer the model was trained with; the base's otherwise
    tokenizer = load_tokenizer(target.adapter or loaded.resolved, padding_side="right")
    with atomic_directory(out_dir) as tmp:
        loaded.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record = {"model": target.model, "adapter": target.adapter, "resolved_model": loaded.resolved}
        (tmp / MERGED_MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return Path(out_dir)

