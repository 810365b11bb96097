"""Loading local models and tokenizers for training and generation (torch imported lazily).

:class:`ModelLoadingOptions` are the options the local trainer and the local chat model share
for bigger models: the weights' ``dtype``, 4-bit quantization (QLoRA, through bitsandbytes on
CUDA) and the attention kernel.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pluggy
from pydantic import Field

from finetunekit import distributed
from finetunekit.component import ComponentOptions
from finetunekit.errors import ConfigError, MissingDependencyError
from finetunekit.backends.local.sources import hub_kwargs, resolve_model

LOCAL_EXTRA_INSTALL = "pip install 'finetunekit[local]'"

Device = Literal["auto", "cpu", "cuda", "mps"]
BF16 = Literal["auto"] | bool
DType = Literal["auto", "float32", "bfloat16", "float16"]
Attention = Literal["auto", "sdpa", "eager", "flash_attention_2"]


class ModelLoadingOptions(ComponentOptions):
    """How the model's weights are loaded (shared by the local trainer and chat model)."""

    dtype: DType = Field(
        "float32", description="Weights' dtype; auto = bfloat16 where it is native (CUDA with bf16, CPUs with "
        "AVX512-BF16/AMX), else float32. With LoRA the adapters stay float32.",
    )
    load_in_4bit: bool = Field(
        False, description="Load the weights quantized to 4 bits (NF4, bitsandbytes; QLoRA when training). "
        "CUDA only; computes in `dtype` (bfloat16 under auto).",
    )
    attn_implementation: Attention = Field(
        "auto", description="Attention kernel; auto = flash_attention_2 on CUDA in 16-bit when flash-attn is "
        "installed, else transformers' default (sdpa where the model supports it).",
    )

    def loading_kwargs(self, device: str) -> dict[str, Any]:
        """The ``load_causal_lm`` keyword arguments these options give on ``device``."""
        dtype = resolve_dtype(self.dtype, device)
        return {
            "dtype": dtype,
            "load_in_4bit": self.load_in_4bit,
            "attn_implementation": resolve_attention(self.attn_implementation, device, dtype),
        }


def require_local_dependencies() -> None:
    """Raise :class:`MissingDependencyError` unless torch, transformers and peft are importable."""
    missing = [name for name in ("torch", "transformers", "peft") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(f"the local backend's dependencies ({', '.join(missing)})", LOCAL_EXTRA_INSTALL)


def pick_device(option: str) -> str:
    """``cuda`` (or ``mps``) when ``option`` is ``auto`` and one is available, else ``cpu``."""
    import torch

    if option == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if option == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was requested but torch sees no CUDA device; use device='auto' or 'cpu'")
    return option


def process_device(device: str) -> str:
    """``device`` as this process uses it: with several processes (torchrun, accelerate launch)
    each one has its own GPU, ``cuda:LOCAL_RANK``."""
    return distributed.local_device(device)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), so bf16 pays off."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def use_bf16(option: BF16, device: str) -> bool:
    """Resolve the ``bf16`` option: ``auto`` means on where bfloat16 is native — CUDA with bf16
    support, or a CPU with AVX512-BF16/AMX (measured: 1.8x the fp32 training throughput) —
    and off elsewhere (MPS, older CPUs)."""
    import torch

    if option == "auto":
        if device == "cuda":
            return torch.cuda.is_bf16_supported()
        return device == "cpu" and cpu_has_bf16()
    if option and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("bf16=True was requested but this CUDA device does not support bfloat16")
    return bool(option)


def resolve_dtype(option: str, device: str) -> Any:
    """The torch dtype of the ``dtype`` option on ``device`` (``auto``: bfloat16 where native)."""
    import torch

    if option == "auto":
        option = "bfloat16" if use_bf16("auto", _device_type(device)) else "float32"
    if option == "bfloat16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise ConfigError("dtype='bfloat16' was requested but this CUDA device does not support bfloat16; use float16")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[option]


def resolve_attention(option: str, device: str, dtype: Any) -> str | None:
    """The ``attn_implementation`` to pass to transformers (None: its default, sdpa where supported)."""
    import torch

    flash_ready = importlib.util.find_spec("flash_attn") is not None
    if option == "auto":
        fits = device.startswith("cuda") and dtype in (torch.bfloat16, torch.float16)
        return "flash_attention_2" if fits and flash_ready else None
    if option == "flash_attention_2":
        if not flash_ready:
            raise MissingDependencyError("flash-attn (for attn_implementation='flash_attention_2')", "pip install flash-attn")
        if not device.startswith("cuda") or dtype not in (torch.bfloat16, torch.float16):
            raise ConfigError(
                f"attn_implementation='flash_attention_2' needs CUDA and dtype bfloat16 or float16 "
                f"(device {device!r}, dtype {str(dtype).removeprefix('torch.')}); use 'sdpa' or 'auto'"
            )
    return option


def quantization_config(device: str, dtype: Any) -> Any:
    """The bitsandbytes 4-bit (NF4, double quantization) config that computes in ``dtype``; a
    clear error off CUDA or without bitsandbytes."""
    if not device.startswith("cuda"):
        raise ConfigError(
            f"load_in_4bit needs a CUDA GPU (bitsandbytes), but this run uses device {device!r}; "
            "set load_in_4bit = false, or run on a machine with CUDA"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError("bitsandbytes (for load_in_4bit)", "pip install 'finetunekit[gpu]'")
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype if dtype != torch.float32 else torch.bfloat16,
    )


def _device_type(device: str) -> str:
    return device.split(":", 1)[0]


def load_tokenizer(resolved: str, *, allow_hub: bool = False, padding_side: str = "right") -> Any:
    """The tokenizer of ``resolved``, with a pad token that is not the EOS token where possible."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, **hub_kwargs(resolved, allow_hub))
    except OSError as exc:  # transformers' many-line "can't load … make sure …" message
        raise model_not_found(resolved, allow_hub, exc) from None
    if tokenizer.chat_template is None:
        raise ConfigError(
            f"model {resolved!r} has no chat template; the local backend needs an instruct/chat model"
        )
    ensure_pad_token(tokenizer)
    tokenizer.padding_side = padding_side
    return tokenizer


def ensure_pad_token(tokenizer: Any) -> None:
    """Give ``tokenizer`` a pad token distinct from EOS when it has none or shares EOS's.

    Labels are built from explicit masks, never from ``input_ids == pad``, so a shared id would
    not break training; a distinct one keeps padding and stopping apart in generation too.
    """
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    vocab = tokenizer.get_vocab()
    for candidate in (tokenizer.unk_token, "<|endoftext|>", "<pad>", "<|finetune_right_pad_id|>"):
        if candidate is not None and vocab.get(candidate, tokenizer.eos_token_id) != tokenizer.eos_token_id:
            tokenizer.pad_token = candidate
            return
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: EOS plus ``<|im_end|>``/``<|eot_id|>``-style tokens."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    vocab = tokenizer.get_vocab()
    for token in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"):
        token_id = vocab.get(token)
        if token_id is not None and token_id not in ids and token_id != tokenizer.pad_token_id:
            ids.append(token_id)
    return ids


def load_causal_lm(
    resolved: str, *, device: str, allow_hub: bool = False, dtype: Any = None, load_in_4bit: bool = False,
    attn_implementation: str | None = None,
) -> Any:
    """The causal LM at ``resolved``, in float32 (or ``dtype``), on ``device``; quantized to 4 bits
    on the GPU with ``load_in_4bit``; with the given attention kernel (None: transformers' default)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype or torch.float32, **hub_kwargs(resolved, allow_hub)}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if load_in_4bit:  # bitsandbytes places the quantized weights itself; they cannot be moved after
        kwargs.update(quantization_config=quantization_config(device, kwargs["dtype"]), device_map={"": device})
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved, **kwargs)
    except OSError as exc:
        raise model_not_found(resolved, allow_hub, exc) from None
    return model if load_in_4bit else model.to(device)


def model_not_found(name: str, allow_hub: bool, exc: OSError) -> ConfigError:
    """A one-line error for a model that ``from_pretrained`` could not find, with close names."""
    import difflib

    from finetunekit.registry import registry_for

    if Path(name).is_dir():  # a directory without the expected files: transformers' first line says which
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ConfigError(f"model directory {name!r} cannot be loaded: {first}")
    registered = registry_for("register_model_sources").names()
    close = difflib.get_close_matches(name, registered, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    where = "" if allow_hub else " (offline: only the local Hugging Face cache is searched unless allow_hub = true)"
    return ConfigError(
        f"model {name!r} not found: not a registered model name, not a local directory and not a Hugging Face "
        f"model id in reach{where}; {hint}registered: {', '.join(registered) or 'none'}"
    )


@dataclass
class LoadedModel:
    """A model and tokenizer ready to use, and where they came from."""

    model: Any
    tokenizer: Any
    resolved: str
    device: str


def load_for_generation(
    model: str,
    *,
    adapter: str | Path | None = None,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    allow_hub: bool = False,
    plugins: pluggy.PluginManager | None = None,
    loading: ModelLoadingOptions | None = None,
    merge_adapter: bool = False,
    dtype: Any = None,
) -> LoadedModel:
    """Base model (+ PEFT adapter, if given) in eval mode, with a left-padding tokenizer.

    ``loading``: dtype, 4-bit quantization, attention kernel (default: float32, transformers'
    attention); ``dtype``, a torch dtype, overrides its dtype. ``merge_adapter``: fold the
    adapter into the weights (faster generation, the same model up to rounding; skipped on
    4-bit weights)."""
    require_local_dependencies()
    resolved = resolve_model(model, plugins=plugins, cache_dir=cache_dir)
    where = process_device(pick_device(device))
    tokenizer = load_tokenizer(resolved, allow_hub=allow_hub, padding_side="left")
    loading = loading or ModelLoadingOptions()
    how = loading.loading_kwargs(where)
    lm = load_causal_lm(resolved, device=where, allow_hub=allow_hub, **{**how, "dtype": dtype or how["dtype"]})
    if adapter is not None:
        from peft import PeftModel

        adapter_dir = Path(adapter)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise ConfigError(f"adapter {str(adapter_dir)!r} is not a PEFT adapter directory (no adapter_config.json)")
        lm = PeftModel.from_pretrained(lm, str(adapter_dir))
        lm = lm if loading.load_in_4bit else lm.to(where)
        if merge_adapter and not loading.load_in_4bit:
            lm = lm.merge_and_unload()
    lm.eval()
    return LoadedModel(model=lm, tokenizer=tokenizer, resolved=resolved, device=where)
