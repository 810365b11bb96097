"""A merged Llama-family model directory written as one GGUF file, for llama.cpp and Ollama.

The file is built with the ``gguf`` package (llama.cpp's own ``gguf-py``): its ``GGUFWriter``,
its HF → GGUF tensor-name map, its quantizers (F16, BF16, Q8_0) and its ``SpecialVocab``
(merges, special-token ids and the chat template from the tokenizer files). The steps are
those of llama.cpp's ``convert_hf_to_gguf.py`` for ``LlamaForCausalLM`` (hyperparameters as
``llama.*`` keys, the byte-level BPE vocabulary with llama.cpp's token types, the q/k weight
permutation llama.cpp's rotary embedding expects, 1-D and norm tensors kept in F32). That
script itself is not installable from a package index, so these steps are re-done here for
the architectures listed in :data:`ARCHITECTURES`; any other model is refused with a message
pointing to the script.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

from finetunekit.errors import ConfigError, MissingDependencyError

#: HF architectures this converter writes (all as llama.cpp's ``llama`` architecture).
ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM")

#: ``--outtype`` choices: llama.cpp's file type and the GGML type of the 2-D weights.
OUTTYPES = ("f32", "f16", "bf16", "q8_0")

CONVERTER_HINT = (
    "export --format merged and convert that directory with llama.cpp's convert_hf_to_gguf.py "
    "(https://github.com/ggml-org/llama.cpp)"
)


def import_gguf() -> Any:
    """The ``gguf`` package, or a :class:`MissingDependencyError` with the install command."""
    try:
        import gguf
    except ImportError as exc:
        raise MissingDependencyError("the gguf package", "pip install 'finetunekit[local]'") from exc
    return gguf


def write_gguf(model_dir: str | Path, out_file: str | Path, *, outtype: str = "f16", name: str | None = None,
               tokenizer_pre: str = "default") -> Path:
    """Convert the HF model in ``model_dir`` (safetensors, ``config.json``, tokenizer files) into
    the GGUF file ``out_file`` (written atomically) with weights in ``outtype``.

    ``tokenizer_pre``: llama.cpp's name of the tokenizer's pre-tokenizer (``smollm`` for
    SmolLM2; llama.cpp's script detects it by hashing, see :func:`tokenizer_pre_of`).
    """
    gguf = import_gguf()
    if outtype not in OUTTYPES:
        raise ConfigError(f"outtype {outtype!r} is not one of {', '.join(OUTTYPES)}")
    source = Path(model_dir)
    hparams = _read_config(source)
    writer = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    file_type, weight_type = _types(gguf, outtype)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or source.resolve().name)
    _add_hparams(gguf, writer, hparams, file_type)
    _add_vocab(gguf, writer, source, hparams, tokenizer_pre)
    for tensor_name, data in _tensors(gguf, source, hparams):
        qtype = weight_type if data.ndim > 1 and not tensor_name.endswith("_norm.weight") else gguf.GGMLQuantizationType.F32
        try:
            packed = gguf.quants.quantize(data, qtype)
        except gguf.QuantError:  # a row length Q8_0 cannot block: llama.cpp falls back to F16 too
            qtype = gguf.GGMLQuantizationType.F16
            packed = gguf.quants.quantize(data, qtype)
        writer.add_tensor(tensor_name, packed, raw_dtype=qtype)
    target = Path(out_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _read_config(source: Path) -> dict[str, Any]:
    config_file = source / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{source} holds no config.json; give a model directory saved with save_pretrained")
    hparams = json.loads(config_file.read_text(encoding="utf-8"))
    architectures = hparams.get("architectures") or []
    if not architectures or architectures[0] not in ARCHITECTURES:
        raise ConfigError(
            f"{config_file}: architecture {architectures or 'unknown'} cannot be written as GGUF here "
            f"(supported: {', '.join(ARCHITECTURES)}); {CONVERTER_HINT}"
        )
    return hparams


def _types(gguf: Any, outtype: str) -> tuple[Any, Any]:
    file_types = {"f32": ("ALL_F32", "F32"), "f16": ("MOSTLY_F16", "F16"), "bf16": ("MOSTLY_BF16", "BF16"),
                  "q8_0": ("MOSTLY_Q8_0", "Q8_0")}
    file_type, weight_type = file_types[outtype]
    return gguf.LlamaFileType[file_type], gguf.GGMLQuantizationType[weight_type]


def _add_hparams(gguf: Any, writer: Any, hp: dict[str, Any], file_type: Any) -> None:
    n_head = hp["num_attention_heads"]
    writer.add_vocab_size(hp["vocab_size"])
    writer.add_block_count(hp["num_hidden_layers"])
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(hp.get("num_key_value_heads", n_head))
    writer.add_rope_dimension_count(hp.get("head_dim") or hp["hidden_size"] // n_head)
    writer.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    rope = hp.get("rope_parameters") or hp.get("rope_scaling") or {}
    theta = rope.get("rope_theta", hp.get("rope_theta"))
    if theta is not None:
        writer.add_rope_freq_base(theta)
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(rope["factor"])
    elif kind not in ("default", None):
        raise ConfigError(f"rope scaling {kind!r} is not written by this converter; {CONVERTER_HINT}")
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_vocab(gguf: Any, writer: Any, source: Path, hp: dict[str, Any], tokenizer_pre: str) -> None:
    """The byte-level BPE vocabulary as llama.cpp's ``gpt2`` tokenizer model, with its token types."""
    from transformers import AutoTokenizer

    if not (source / "tokenizer.json").is_file():
        raise ConfigError(f"{source} has no tokenizer.json (a fast byte-level BPE tokenizer is needed); {CONVERTER_HINT}")
    tokenizer = AutoTokenizer.from_pretrained(source)
    vocab = tokenizer.get_vocab()
    size = max(hp["vocab_size"], max(vocab.values()) + 1)
    by_id = {index: token for token, index in vocab.items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(size):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in added:
            special = decoder[index].special if index in decoder else False
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if special or _looks_special(token) else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tokenizer_pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(source, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise ConfigError(f"{source}: the tokenizer has no BPE merges; {CONVERTER_HINT}")
    if special.chat_template is None:
        raise ConfigError(f"{source}: the tokenizer has no chat template to write into the GGUF metadata")
    special.add_to_gguf(writer)


def _looks_special(token: str) -> bool:
    """llama.cpp's rule for added tokens not flagged special that are control tokens all the same."""
    return (token.startswith("<|") and token.endswith("|>")) or token in ("<pad>", "<mask>")


def _tensors(gguf: Any, source: Path, hp: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``(gguf name, float32 numpy array)`` for every weight, q/k permuted for llama.cpp's rope."""
    import numpy as np
    from safetensors import safe_open

    files = sorted(source.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{source} holds no .safetensors weights; save the model with safe_serialization=True")
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, hp["num_hidden_layers"])
    n_head = hp["num_attention_heads"]
    n_kv = hp.get("num_key_value_heads", n_head)
    for file in files:
        with safe_open(str(file), framework="pt") as weights:
            for key in weights.keys():
                if key.endswith(".rotary_emb.inv_freq"):
                    continue
                if key == "lm_head.weight" and hp.get("tie_word_embeddings"):
                    continue  # the output layer is the token embedding, as llama.cpp reads it
                data = weights.get_tensor(key).float().numpy()
                if key.endswith(("q_proj.weight", "q_proj.bias")):
                    data = _permute(data, n_head)
                elif key.endswith(("k_proj.weight", "k_proj.bias")):
                    data = _permute(data, n_kv)
                mapped = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if mapped is None:
                    raise ConfigError(f"{file}: tensor {key!r} has no GGUF name for the llama architecture; {CONVERTER_HINT}")
                yield mapped, np.ascontiguousarray(data)


def _permute(weights: Any, heads: int) -> Any:
    """Reorder each head's rows from HF's rotate-half layout to the interleaved one llama.cpp uses."""
    shape = weights.shape
    return weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def tokenizer_pre_of(gguf_file: str | Path) -> str | None:
    """The ``tokenizer.ggml.pre`` value of an existing GGUF file (``None`` when absent)."""
    gguf = import_gguf()
    field = gguf.GGUFReader(str(gguf_file)).fields.get("tokenizer.ggml.pre")
    return None if field is None else str(field.contents())
