"""The ``local`` chat model: batched generation with transformers (left padding, KV cache).

Prompts are rendered with the model's chat template and sorted by length so each batch pads
little. Greedy answers (the default) are decoded ``batch_size`` rows at a time, a row that ends
its turn making room for the next prompt (:mod:`~finetunekit.backends.local.decoding`); sampled
ones batch by batch with ``model.generate``, seeded. Answers are cut at the end-of-turn token and
returned in the caller's order.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from pydantic import Field

from finetunekit.component import option
from finetunekit.hookspecs import hookimpl
from finetunekit import memory
from finetunekit.chat import ChatModel, Message
from finetunekit.backends.local.confidence import GreedyLogProbs, answer_length, confidence, start_after
from finetunekit.backends.local.loading import ModelLoadingOptions
from finetunekit.backends.local.sources import DEFAULT_MODEL


@dataclass(frozen=True)
class Generation:
    """One row of a :meth:`LocalChatModel.generate_tokens` call: the answer's token ids (cut
    before the end-of-turn token) and whether the model ended its turn (else it hit the limit)."""

    tokens: list[int]
    finished: bool


class LocalChatModel(ChatModel):
    """Answers with an open-weight model on this machine, optionally with a PEFT adapter on top."""

    name = "local"

    class Options(ChatModel.Options, ModelLoadingOptions):
        """Which model, how to load it (dtype, 4-bit, attention kernel), and how to generate."""

        model: str = Field(DEFAULT_MODEL, description="Registered model name, local directory or HF model id.")
        adapter: str | None = Field(None, description="A PEFT adapter directory to apply to the model.")
        max_new_tokens: int = Field(160, ge=1, description="Longest answer, in tokens.")
        batch_size: int = option(16, affects_result=False, ge=1, description="Prompts generated together.")
        temperature: float = Field(0.0, ge=0.0, description="0 = greedy; above 0 samples.")
        top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass (sampling only).")
        seed: int = Field(0, description="Seed for sampling.")
        device: Literal["auto", "cpu", "cuda", "mps"] = option("auto", affects_result=False, description="Where to generate; auto = CUDA when present, else CPU.")
        cache_dir: str | None = option(None, affects_result=False, description="Where converted models are cached.")
        allow_hub: bool = option(False, affects_result=False, description="Let an HF model id download from the hub.")
        progress: bool = option(True, affects_result=False, description="Show a progress bar.")
        merge_adapter: bool = Field(
            True, description="Fold the adapter into the weights before generating (faster; the same model up to "
            "rounding). Not with share_model, which keeps the base weights intact.",
        )
        share_model: bool = option(
            True, affects_result=False, description="Base and fine-tuned models of the same weights answer from one "
            "copy in memory (the adapter switched on and off; the base's answers are exactly its own, the adapter "
            "is applied unmerged). Off = each chat model loads its own copy.",
        )
        continuous_batching: bool = option(
            True, affects_result=False, description="Greedy answers: a row that ends its turn stops being decoded and "
            "waiting prompts join the running batch as places free up (the same answers up to rounding; models with a "
            "repetition penalty or other score changes in their generation config, or not full attention, use "
            "generate). Off = transformers' generate batch by batch (each batch runs until its longest answer ends).",
        )
        confidence_tokens: int = Field(
            40, ge=1, description="Answer tokens whose mean log-probability is the answer's confidence (greedy only)."
        )
        confidence_after: str | None = Field(
            None, description="Score the tokens after the first occurrence of this text (e.g. the answer's fixed "
            "opening); unset = from the first token.",
        )

    def __init__(self, options: Any = None, *, plugins: Any = None) -> None:
        super().__init__(options, plugins=plugins)
        self._loaded: Any = None
        #: Generation passes run: one ``model.generate`` call per batch, or one continuous decoding per answer() call.
        self.generate_calls = 0
        self._shared: Any = None  # the SharedModel answered from, with share_model
        self._adapter_name: str | None = None

    @property
    def model_label(self) -> str:
        """The model name, with the adapter's folder when there is one."""
        o = self.options
        return f"{o.model}+{Path(o.adapter).name}" if o.adapter else o.model

    @property
    def loaded(self) -> Any:
        """The model and tokenizer (loaded on first use)."""
        if self._loaded is None:
            o = self.options
            where = dict(device=o.device, cache_dir=o.cache_dir, allow_hub=o.allow_hub, plugins=self.plugins, loading=o)
            if o.share_model:
                from finetunekit.backends.local.shared import shared_model

                self._shared = shared_model(o.model, **where)
                if o.adapter:
                    self._adapter_name = self._shared.add_adapter(o.adapter, directory_fingerprint(o.adapter))
                self._loaded = self._shared.loaded
            else:
                from finetunekit.backends.local.loading import load_for_generation

                self._loaded = load_for_generation(o.model, adapter=o.adapter, merge_adapter=o.merge_adapter, **where)
        return self._loaded

    def release(self) -> None:
        """Let go of the loaded model and hand the freed memory back; the next answer loads it again.

        A shared copy stays while another chat model holds it, and the last one released stays
        until a different model is loaded (so a fine-tuned model of the same weights answering
        next reuses it).
        """
        import sys

        if self._shared is not None:
            from finetunekit.backends.local.shared import park

            park(self._shared)
        self._loaded = self._shared = self._adapter_name = None
        memory.collect_and_release()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()  # back to the device, not only to torch's caching allocator

    def _model(self) -> Any:
        """A context giving the model to generate with (this chat model's adapter active, if shared)."""
        loaded = self.loaded
        if self._shared is None:
            return contextlib.nullcontext(loaded.model)
        return self._shared.using(self._adapter_name)

    def cache_identity(self) -> dict[str, Any]:
        """The options and files, besides the messages, that change an answer."""
        o = self.options
        identity = o.model_dump(
            include={"model", "max_new_tokens", "temperature", "top_p", "confidence_tokens", "confidence_after",
                     "merge_adapter", "dtype"}, mode="json",
        )
        if o.adapter and o.share_model:  # a shared model applies the adapter unmerged
            identity["merge_adapter"] = False
        for name in ("load_in_4bit", "attn_implementation"):  # only when set: earlier cached answers stay valid
            if getattr(o, name) != type(o).model_fields[name].default:
                identity[name] = getattr(o, name)
        if o.temperature > 0:
            identity.update(seed=o.seed, batch_size=o.batch_size)
        identity["adapter"] = directory_fingerprint(o.adapter) if o.adapter else None
        identity["model_files"] = directory_fingerprint(o.model) if Path(o.model).is_dir() else None
        return identity

    def generate(self, conversations: list[list[Message]]) -> list[str]:
        """Answer each conversation (the base class has already skipped cached ones)."""
        return [text for text, _ in self._generate(conversations)]

    def generate_scored(self, conversations: list[list[Message]]) -> list[tuple[str, float | None]]:
        """Each answer with its confidence (greedy decoding; ``None`` when sampling)."""
        return self._generate(conversations)

    def _generate(self, conversations: list[list[Message]]) -> list[tuple[str, float | None]]:
        from tqdm.auto import tqdm

        tokenizer = self.loaded.tokenizer
        encoded = [encode_conversation(tokenizer, c) for c in conversations]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        bar = tqdm(total=len(order), desc=f"answering ({self.model_label})", unit="q", disable=not self.options.progress)
        try:
            with bar:
                if self._continuous():
                    return self._greedy([encoded[i] for i in order], order, bar)
                return self._batched(encoded, order, bar)
        finally:
            memory.release_freed_memory()  # on a CPU, the pages of every answer's keys and values

    def _continuous(self) -> bool:
        """Whether greedy answers are decoded with continuous batching (the option, and a model
        whose answers it reproduces: no repetition penalty or other score changes, full attention)."""
        from finetunekit.backends.local.decoding import supports_continuous_decoding

        o = self.options
        if o.temperature > 0 or not o.continuous_batching:
            return False
        with self._model() as model:
            return supports_continuous_decoding(model)

    def _greedy(self, prompts: list[list[int]], order: list[int], bar: Any) -> list[tuple[str, float | None]]:
        """Greedy answers with their confidence, ``batch_size`` rows decoded at a time, a finished
        row's place taken by the next prompt (:func:`~finetunekit.backends.local.decoding.decode_greedy`)."""
        from finetunekit.backends.local.decoding import decode_greedy
        from finetunekit.backends.local.loading import end_of_turn_ids

        tokenizer, o = self.loaded.tokenizer, self.options
        self.generate_calls += 1
        with self._model() as model:  # decode_greedy runs under inference_mode itself
            decoded = decode_greedy(
                model, prompts, pad_id=tokenizer.pad_token_id, stop_ids=end_of_turn_ids(tokenizer),
                max_new_tokens=o.max_new_tokens, slots=o.batch_size, on_done=lambda *_: bar.update(),
            )
        answers: list[tuple[str, float | None]] = [("", None)] * len(prompts)
        for i, answer in zip(order, decoded):
            answers[i] = (self.decode(answer.tokens), self._scored(answer.tokens, answer.log_probs[: len(answer.tokens)]))
        return answers

    def _batched(self, encoded: list[list[int]], order: list[int], bar: Any) -> list[tuple[str, float | None]]:
        """Answers batch by batch with ``model.generate`` (each batch runs until its longest answer
        ends): sampled ones seeded, without confidence; greedy ones with it."""
        import torch

        from finetunekit.backends.local.decoding import left_pad

        tokenizer, o = self.loaded.tokenizer, self.options
        config = self._generation_config(tokenizer)
        answers: list[tuple[str, float | None]] = [("", None)] * len(encoded)
        with torch.random.fork_rng() if o.temperature > 0 else contextlib.nullcontext():
            if o.temperature > 0:
                torch.manual_seed(o.seed)
            for start in range(0, len(order), o.batch_size):
                batch = order[start : start + o.batch_size]
                ids, mask = left_pad([encoded[i] for i in batch], tokenizer.pad_token_id, self.loaded.device)
                recorder = GreedyLogProbs() if o.temperature == 0 else None
                out = self._model_generate(ids, mask, config, logits_processor=[recorder] if recorder else None)
                for row, i in enumerate(batch):
                    generated = out[row, ids.shape[1] :].tolist()
                    n = answer_length(generated, config.eos_token_id)
                    scored = None if recorder is None else self._scored(generated[:n], recorder.row(row, n))
                    answers[i] = (self.decode(generated[:n]), scored)
                bar.update(len(batch))
        return answers

    def _scored(self, tokens: list[int], log_probs: list[float]) -> float:
        """A greedy answer's confidence from its tokens' log-probabilities (options ``confidence_*``)."""
        o = self.options
        start = start_after(self.loaded.tokenizer, tokens, o.confidence_after)
        return confidence(log_probs, start, o.confidence_tokens)

    def encode(self, conversation: list[Message]) -> list[int]:
        """The prompt's token ids: ``conversation`` rendered with the chat template, ready for the answer."""
        return encode_conversation(self.loaded.tokenizer, conversation)

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of answer tokens, as :meth:`generate` returns it (special tokens dropped, stripped)."""
        return self.loaded.tokenizer.decode(list(tokens), skip_special_tokens=True).strip()

    def generate_tokens(
        self, prompts: list[list[int]], *, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
        seed: int | None = None, on_step: Callable[[list[int]], None] | None = None,
    ) -> list[Generation]:
        """One batched ``model.generate`` call over ``prompts`` (token ids from :meth:`encode`),
        whatever ``batch_size`` says: each row's answer, in order.

        ``temperature`` 0 decodes greedily (as :meth:`generate` does); above 0 it samples, seeded
        with ``seed`` when given. ``on_step(tokens)`` is called after every decoding step with the
        token each row just received (a finished row keeps receiving padding), so a caller can
        stream answers as they grow.
        """
        import torch

        from finetunekit.backends.local.decoding import left_pad

        tokenizer = self.loaded.tokenizer
        config = self._generation_config(tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        ids, mask = left_pad(prompts, tokenizer.pad_token_id, self.loaded.device)
        criteria = [_StepObserver(on_step)] if on_step is not None else None
        with torch.random.fork_rng() if seed is not None else contextlib.nullcontext():
            if seed is not None:
                torch.manual_seed(seed)
            out = self._model_generate(ids, mask, config, stopping_criteria=criteria)
        stops = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
        rows = []
        for row in range(len(prompts)):
            generated = out[row, ids.shape[1] :].tolist()
            n = answer_length(generated, stops)
            rows.append(Generation(tokens=generated[:n], finished=n < len(generated)))
        return rows

    def _model_generate(self, ids: Any, mask: Any, config: Any, **kwargs: Any) -> Any:
        import torch

        self.generate_calls += 1
        with torch.inference_mode(), self._model() as model:
            return model.generate(input_ids=ids, attention_mask=mask, generation_config=config, **kwargs)

    def _generation_config(self, tokenizer: Any, *, max_new_tokens: int | None = None, temperature: float | None = None,
                           top_p: float | None = None) -> Any:
        """Generation settings: the options', or the given overrides."""
        from transformers import GenerationConfig

        from finetunekit.backends.local.loading import end_of_turn_ids

        o = self.options
        temperature = o.temperature if temperature is None else temperature
        top_p = o.top_p if top_p is None else top_p
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
        return GenerationConfig(
            max_new_tokens=o.max_new_tokens if max_new_tokens is None else max_new_tokens,
            eos_token_id=end_of_turn_ids(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            use_cache=True,
            **sampling,
        )


def encode_conversation(tokenizer: Any, conversation: list[Message]) -> list[int]:
    """``conversation`` rendered with ``tokenizer``'s chat template (ready for the assistant's
    turn) and tokenized: the prompt the local chat model generates from."""
    prompt = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def directory_fingerprint(path: str | Path) -> str:
    """A hash of the names, sizes and modification times of the files under ``path``."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class _StepObserver:
    """A ``transformers`` stopping criterion that never stops: it hands each step's new tokens to a callback."""

    def __init__(self, callback: Callable[[list[int]], None]) -> None:
        self.callback = callback

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.callback(input_ids[:, -1].tolist())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


@hookimpl
def register_chat_models(register):
    """Register the ``local`` chat model."""
    register(LocalChatModel)
