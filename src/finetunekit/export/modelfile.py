"""The Ollama ``Modelfile`` beside an exported GGUF (``ollama create NAME -f Modelfile``).

Ollama speaks Go templates, not the Jinja chat template the GGUF metadata carries. For a
ChatML template (``<|im_start|>role\\n…<|im_end|>``, SmolLM2's and Qwen's) the Modelfile spells
it out, with the system message the Jinja template adds when a conversation has none as
``SYSTEM``; for any other template it leaves ``TEMPLATE`` out and Ollama reads the chat
template from the GGUF metadata. Generation defaults to greedy (``temperature 0``), as the
evaluation answers, and stops at the model's end-of-turn tokens.
"""

from __future__ import annotations

from typing import Any

CHATML_TEMPLATE = (
    '{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
    '{{- range .Messages }}{{- if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
    '{{- end }}<|im_start|>assistant\n'
)

_PROBE = "\x00question\x00"


def default_system(tokenizer: Any) -> str | None:
    """The system message ``tokenizer``'s ChatML template adds to a conversation without one
    (``None``: it adds none); raises ``ValueError`` for a template that is not ChatML."""
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": _PROBE}], tokenize=False,
                                             add_generation_prompt=True)
    user_turn = f"<|im_start|>user\n{_PROBE}<|im_end|>\n<|im_start|>assistant\n"
    if not rendered.endswith(user_turn):
        raise ValueError("not a ChatML chat template")
    before = rendered[: -len(user_turn)]
    if not before:
        return None
    if before.startswith("<|im_start|>system\n") and before.endswith("<|im_end|>\n"):
        return before[len("<|im_start|>system\n") : -len("<|im_end|>\n")]
    raise ValueError("not a ChatML chat template")


def render_modelfile(gguf_name: str, tokenizer: Any, stop_tokens: list[str]) -> str:
    """The Modelfile text for the GGUF file ``gguf_name`` (in the same folder)."""
    lines = [
        "# Ollama Modelfile written by `finetunekit export` (ollama create NAME -f Modelfile)",
        f"FROM ./{gguf_name}",
    ]
    try:
        system = default_system(tokenizer)
    except ValueError:
        lines.append("# no TEMPLATE: Ollama takes the chat template from the GGUF metadata")
    else:
        lines.append(f'TEMPLATE """{CHATML_TEMPLATE}"""')
        if system is not None:
            lines.append(f'SYSTEM """{system}"""')
    lines += [f'PARAMETER stop "{token}"' for token in stop_tokens]
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"
