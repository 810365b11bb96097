"""The ``local`` trainer: LoRA (or full) fine-tuning with ``transformers.Trainer`` and ``peft``.

Because the loop is ``transformers.Trainer``'s own, ``accelerate launch your_script.py`` runs
the same code on several GPUs or machines (DDP, FSDP, DeepSpeed) with nothing home-made: every
process calls ``train``; rank 0 writes the run files (docs/scaling.md).

Run directory layout::

    run_dir/
      checkpoints/checkpoint-N/   resumable checkpoints (the last two are kept)
      adapter/                    the PEFT LoRA adapter + tokenizer (or model/ with full_finetune)
      merged/                     base + adapter merged (only with merge=True)
      metrics.csv                 loss history: step, loss, epoch, learning_rate, grad_norm, eval_loss
      options.json                the options and example fingerprints of this run (resuming with others is refused)
      data_report.json            token counts, truncated and untrainable examples
      training.json               written last: options, example fingerprints, timings; marks the run complete
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from finetunekit import distributed, memory
from finetunekit.atomic import write_json
from finetunekit.component import option
from finetunekit.errors import ConfigError, TrainingError
from finetunekit.hookspecs import hookimpl
from finetunekit.backends.local.loading import ModelLoadingOptions
from finetunekit.backends.local.sources import DEFAULT_MODEL
from finetunekit.training import FineTunedModel, Trainer

logger = logging.getLogger(__name__)

COMPLETE_FILE = "training.json"


def example_dicts(examples: Any) -> list[dict[str, Any]]:
    """The ``{"messages": [...]}`` dicts of an ExampleSet or of any sequence of such dicts."""
    return list(_example_set(examples).examples) if examples is not None else []


def example_fingerprints(examples: Any, validation: Any = None) -> dict[str, str | None]:
    """The fingerprints of the training and validation examples (None: no validation set),
    recorded with a run so that it is never resumed or reused on other data."""
    return {
        "train": _example_set(examples).fingerprint(),
        "validation": _example_set(validation).fingerprint() if validation is not None else None,
    }


def _example_set(examples: Any) -> Any:
    from finetunekit.examples.example_set import as_example_set

    try:
        return as_example_set(examples)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


class LocalTrainer(Trainer):
    """Fine-tunes an open-weight chat model on this machine (CPU, CUDA, or many GPUs via accelerate)."""

    name = "local"

    #: The model object of the last ``train`` call in this process (None before, or if skipped).
    trained_model: Any = None

    class Options(ModelLoadingOptions):
        """Hyperparameters, how to load the model (dtype, 4-bit for QLoRA, attention kernel) and where to run."""

        model: str = Field(DEFAULT_MODEL, description="Registered model name, local directory or HF model id.")
        full_finetune: bool = Field(False, description="Train every weight instead of a LoRA adapter.")
        trained_layers: int | None = Field(
            None, ge=1, description="With full_finetune: train only the top N decoder layers (and the final norm); "
            "the embeddings and the layers below stay frozen, so backward stops early (faster, less optimizer "
            "memory). None = every weight.",
        )
        frozen_layer_cache: bool = Field(
            True, description="With trained_layers: compute the frozen layers' output once per example and reuse it "
            "in later epochs (the same up to rounding; at most 1 GiB of hidden states). Not with packing or dropout.",
        )
        lora_r: int = Field(16, ge=1, description="LoRA rank.")
        lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
        lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
        target_modules: list[str] | str = Field("all-linear", description="Modules that get LoRA adapters.")
        epochs: float = Field(12, gt=0, description="Passes over the training examples (memorising facts takes many).")
        learning_rate: float = Field(2e-3, gt=0, description="Peak learning rate (linear decay after warmup).")
        lr_scheduler: str = Field("linear", description="transformers scheduler name.")
        warmup: float = Field(0.05, ge=0, description="Warmup: a fraction of the steps if < 1, else a step count.")
        weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
        batch_size: int = Field(8, ge=1, description="Examples per device per step.")
        gradient_accumulation: int = Field(1, ge=1, description="Steps accumulated per optimizer update.")
        max_length: int | Literal["auto"] = Field(
            "auto", description="Token limit per example; longer ones are truncated (and counted). "
            "auto = the longest example, up to max_length_cap, so no answer is cut unless you ask.",
        )
        max_length_cap: int = Field(2048, ge=8, description="The most max_length=auto may choose.")
        seed: int = option(0, pipeline="seed", description="Seed for data order, LoRA initialisation and dropout.")
        device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Where to train; auto = CUDA when present, else CPU.")
        bf16: Literal["auto"] | bool = Field("auto", description="bfloat16 mixed precision; auto = on CUDA with bf16 and on CPUs with AVX512-BF16/AMX.")
        logging_steps: int = option(5, affects_result=False, ge=1, description="Log the loss (and write metrics.csv) every N steps.")
        save_steps: int | None = Field(None, ge=1, description="Checkpoint every N steps; None = every epoch.")
        save_total_limit: int = option(2, affects_result=False, ge=1, description="Checkpoints kept (older ones are deleted).")
        merge: bool = Field(False, description="Also save base + adapter merged into one model (merged/).")
        cache_dir: str | None = option(None, affects_result=False, description="Where converted models are cached.")
        allow_hub: bool = Field(False, description="Let an HF model id download from the hub.")
        gradient_checkpointing: bool = Field(
            False, description="Recompute activations in the backward pass instead of keeping them: less memory, "
            "slower (works with LoRA and 4-bit). With trained_layers only the trained layers are recomputed and the "
            "frozen-layer cache stays on (one epoch of the example: 0.84x the peak memory, docs/benchmarks.md).",
        )
        report_to: str | list[str] = option(
            "none", affects_result=False, description="Also report the training metrics to: none, all (every "
            "installed one), tensorboard, mlflow, wandb, trackio, or a list of them (transformers' integrations).",
        )
        early_stopping_patience: int | None = Field(
            None, ge=1, description="Stop when the eval loss has not improved for this many epochs (needs "
            "validation examples); the best epoch's model is the one saved.",
        )
        chunked_loss: bool = Field(
            True, description="Compute the loss from hidden states on label positions only, chunk by chunk, so the "
            "batch's full-vocabulary logits never exist (less memory, same loss up to rounding); off = the model's own loss.",
        )
        micro_batch_tokens: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
            "auto", description="Run each batch as padding-free pieces of at most this many tokens (forward and "
            "backward per piece, summed: the batch's loss and gradients up to rounding): less padding, and "
            "activation memory for one piece instead of the batch. auto = 512 on CPU, the whole batch on GPUs; "
            "None = the whole batch at once.",
        )
        packing: bool = Field(
            False, description="Lay each piece's examples end to end in one row (position ids restart per example, "
            "so attention stays within each example); pays with flash-attention's variable-length kernel on CUDA.",
        )

        @field_validator("report_to")
        @classmethod
        def _installed(cls, value: str | list[str]) -> str | list[str]:
            from finetunekit.backends.local.telemetry import check_report_to

            return check_report_to(value)

        @model_validator(mode="after")
        def _quantized_weights_stay_frozen(self) -> LocalTrainer.Options:
            if self.load_in_4bit and self.full_finetune:
                raise ValueError("load_in_4bit trains LoRA adapters on frozen 4-bit weights (QLoRA); "
                                 "it cannot be combined with full_finetune")
            if self.trained_layers is not None and not self.full_finetune:
                raise ValueError("trained_layers chooses which weights full fine-tuning trains; "
                                 "set full_finetune = true (LoRA trains adapters on every layer)")
            if self.load_in_4bit and self.merge:
                raise ValueError("merge would fold the adapter into 4-bit weights; train with merge = false "
                                 "and merge onto unquantized weights afterwards")
            return self

    def train(self, examples: Any, validation: Any = None, *, run_dir: str | Path) -> FineTunedModel:
        """Fine-tune on ``examples`` in ``run_dir``; resume from its last checkpoint, or return the
        finished result if ``run_dir`` already holds a completed run."""
        run = Path(run_dir)
        fingerprints = example_fingerprints(examples, validation)
        done = self._completed(run, fingerprints)
        if done is not None:
            logger.info("run %s is already complete; not training again", run)
            return done
        train_rows = example_dicts(examples)
        if not train_rows:
            raise ConfigError("no training examples given")
        from finetunekit.backends.local.telemetry import early_stopping_arguments

        early_stopping_arguments(self.options.early_stopping_patience, has_eval=bool(example_dicts(validation)),
                                 save_steps=self.options.save_steps)  # refuses a bad combination before any loading
        from finetunekit.backends.local.loading import require_local_dependencies

        require_local_dependencies()
        return self._train(train_rows, example_dicts(validation), run, fingerprints)

    def check(self, examples: Any) -> Any:
        """The examples' checks with exact token counts from the model's own tokenizer and chat
        template (what training sees); an example over ``max_length`` (auto: ``max_length_cap``)
        is reported as one that will be truncated."""
        from finetunekit.backends.local.tokens import chat_template_counter

        o = self.options
        counter = chat_template_counter(o.model, plugins=self.plugins, cache_dir=o.cache_dir, allow_hub=o.allow_hub)
        limit = o.max_length if isinstance(o.max_length, int) else o.max_length_cap
        return _example_set(examples).validate(model=o.model, max_tokens_per_example=limit, encoding=counter)

    # -- the run -----------------------------------------------------------------------------

    def _train(self, train_rows: list[dict], validation_rows: list[dict], run: Path, fingerprints: dict) -> FineTunedModel:
        from transformers import set_seed
        from finetunekit.backends.local.hf_trainer import chunked_loss_trainer_class
        from finetunekit.backends.local.loading import load_causal_lm, load_tokenizer, pick_device, process_device, use_bf16
        from finetunekit.backends.local.sources import resolve_model
        from finetunekit.backends.local.callbacks import loss_history_callback, release_memory_callback, write_history
        from finetunekit.backends.local.telemetry import early_stopping_callbacks
        from finetunekit.backends.local.collation import ChatDataset, PaddingCollator, tokenize_examples

        o = self.options
        set_seed(o.seed)
        resolved = resolve_model(o.model, plugins=self.plugins, cache_dir=o.cache_dir)
        device = pick_device(o.device)
        bf16 = use_bf16(o.bf16, device)
        tokenizer = load_tokenizer(resolved, allow_hub=o.allow_hub)
        train_items, report = tokenize_examples(tokenizer, train_rows, o.max_length, cap=o.max_length_cap)
        eval_items, eval_report = tokenize_examples(tokenizer, validation_rows, report.max_length)
        self._report_data(run, report, eval_report if validation_rows else None)
        if report.trainable_tokens == 0:
            raise TrainingError("no example has an assistant token to train on; check the examples' roles")

        where = process_device(device)  # each process its own GPU
        if device == "cpu":
            memory.cap_primitive_caches()  # before the first matmul: oneDNN and ideep read them at their first use
        model = self._prepare_model(load_causal_lm(resolved, device=where, allow_hub=o.allow_hub, **o.loading_kwargs(where)))
        checkpoints = run / "checkpoints"
        metrics_path = run / "metrics.csv"
        frozen_cache = self._frozen_layer_cache(model)
        trainer = chunked_loss_trainer_class()(
            model=model,
            frozen_cache=frozen_cache,
            chunked_loss=o.chunked_loss,
            micro_batch_tokens=micro_batch_budget(o.micro_batch_tokens, device),
            packed=o.packing,
            args=self._training_arguments(checkpoints, device, bf16, has_eval=bool(validation_rows)),
            train_dataset=ChatDataset(train_items),
            eval_dataset=ChatDataset(eval_items) if validation_rows else None,
            data_collator=PaddingCollator(tokenizer.pad_token_id, pad_to_multiple_of=8 if device == "cuda" else None),
            processing_class=tokenizer,
            callbacks=[loss_history_callback(metrics_path), *([release_memory_callback()] if device == "cpu" else []),
                       *early_stopping_callbacks(o.early_stopping_patience)],
        )
        last = distributed.from_main(lambda: last_complete_checkpoint(checkpoints))  # the same on every process
        self._check_resumable(run, last, fingerprints)
        if last:
            logger.info("resuming from %s", last)
        started = time.perf_counter()
        if frozen_cache is not None:
            frozen_cache.install()
        try:
            result = trainer.train(resume_from_checkpoint=last)
        except KeyboardInterrupt:
            raise TrainingError(f"training interrupted; rerun with run_dir={str(run)!r} to resume from the last checkpoint") from None
        finally:
            if frozen_cache is not None:
                frozen_cache.remove()
        seconds = time.perf_counter() - started
        # without accelerate's wrappers (e.g. its bf16 autocast around forward)
        self.trained_model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        model_dir = run / ("model" if o.full_finetune else "adapter")
        trainer.save_model(str(model_dir))  # every rank takes part (FSDP/DeepSpeed); rank 0 writes
        if not trainer.is_world_process_zero():
            return self._result(run, resolved, {})
        write_history(metrics_path, trainer.state.log_history)
        tokenizer.save_pretrained(str(model_dir))
        if o.merge and not o.full_finetune:
            # merge a copy, so the trained model keeps its adapter (costs one model's memory)
            merged = copy.deepcopy(self.trained_model).merge_and_unload()
            merged.save_pretrained(str(run / "merged"))
            tokenizer.save_pretrained(str(run / "merged"))
        steps_run = trainer.state.global_step - (int(Path(last).name.split("-")[-1]) if last else 0)
        epochs_run = o.epochs * steps_run / max(trainer.state.max_steps, 1)
        details = {
            "options": o.model_dump(mode="json"),
            "examples": fingerprints,
            "resolved_model": resolved,
            "device": device,
            "bf16": bf16,
            "resumed_from": last,
            "processes": trainer.args.world_size,
            "global_step": trainer.state.global_step,
            "max_steps": trainer.state.max_steps,
            "stopped_early": trainer.state.global_step < trainer.state.max_steps,
            "best_eval_loss": trainer.state.best_metric,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "train_loss": result.training_loss,
            "train_seconds": round(seconds, 2),
            "tokens_per_second": round(report.tokens * epochs_run / seconds, 1) if seconds > 0 else None,
            "data": report.as_dict(),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            # forward passes whose frozen layers ran (misses) or came from the cache (hits)
            # (and the most resident bytes of frozen weights one drop released)
            "frozen_layer_cache": {"hits": frozen_cache.hits, "misses": frozen_cache.misses,
                                   "dropped_bytes": frozen_cache.dropped_bytes} if frozen_cache else None,
        }
        done = self._result(run, resolved, details)
        write_json(run / COMPLETE_FILE, done.model_dump())
        return done

    def _check_resumable(self, run: Path, last: str | None, fingerprints: dict) -> None:
        """Refuse to resume checkpoints written with other options or on other examples;
        record the options and example fingerprints used."""
        path = run / "options.json"
        current = {"options": self.options.model_dump(mode="json"), "examples": fingerprints}
        if last and path.is_file():
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if not self._same_result_options(recorded.get("options")):
                raise ConfigError(
                    f"{last} was written with other trainer options (see {path}); "
                    "use another run_dir, or delete that one to start over"
                )
            if recorded.get("examples") != fingerprints:
                raise ConfigError(
                    f"{last} was trained on other examples ({_differing(recorded.get('examples'), fingerprints)}; see {path}); "
                    "use another run_dir, or delete that one to start over"
                )
        if distributed.is_main_process():
            write_json(path, current)

    def _same_result_options(self, recorded: Any) -> bool:
        """Whether ``recorded`` (options saved with a run) equals the current options in every
        result-changing one: where metrics are reported or how often they are logged may change."""
        if not isinstance(recorded, dict):
            return False
        current = self.options.model_dump(mode="json")
        then = {**self.Options().model_dump(mode="json"), **recorded}  # options added since then: their defaults
        return self.Options.result_options(then) == self.Options.result_options(current)

    def _frozen_layer_cache(self, model: Any) -> Any:
        """A :class:`FrozenLayerCache` for the layers below ``trained_layers`` (None where it does not apply)."""
        o = self.options
        if not (o.full_finetune and o.trained_layers and o.frozen_layer_cache) or o.packing:
            return None  # (gradient checkpointing then covers the trained layers only: they need no input gradients)
        config = model.config.to_dict()
        if any(isinstance(v, float) and v > 0 and ("dropout" in k or "pdrop" in k) for k, v in config.items()):
            return None  # with dropout the frozen layers' output differs every time
        from finetunekit.backends.local.freezing import decoder_layers
        from finetunekit.backends.local.frozen_cache import FrozenLayerCache

        layers = decoder_layers(model)
        return FrozenLayerCache(layers, len(layers) - o.trained_layers) if o.trained_layers < len(layers) else None

    def _checkpoints_top_layers(self) -> bool:
        """Whether gradient checkpointing covers the trained top layers only (full fine-tuning of
        ``trained_layers``), not the whole model."""
        o = self.options
        return bool(o.gradient_checkpointing and o.full_finetune and o.trained_layers)

    def _prepare_model(self, model: Any) -> Any:
        """Wrap ``model`` with LoRA adapters (or leave it whole for full fine-tuning, its lower
        layers frozen with ``trained_layers``)."""
        o = self.options
        if o.load_in_4bit:  # QLoRA: frozen 4-bit weights, norms in float32, LoRA adapters on top
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=o.gradient_checkpointing)
        elif o.gradient_checkpointing and not self._checkpoints_top_layers():
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()  # LoRA: the frozen embeddings' output must carry gradients
        if o.full_finetune:
            if o.trained_layers is not None:
                from finetunekit.backends.local.freezing import freeze_below_top_layers

                freeze_below_top_layers(model, o.trained_layers)
                if o.gradient_checkpointing:
                    from finetunekit.backends.local.freezing import checkpoint_top_layers

                    checkpoint_top_layers(model, o.trained_layers)
            return model
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=o.lora_r,
            lora_alpha=o.lora_alpha,
            lora_dropout=o.lora_dropout,
            target_modules=o.target_modules,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config)

    def _training_arguments(self, output_dir: Path, device: str, bf16: bool, *, has_eval: bool) -> Any:
        from transformers import TrainingArguments

        from finetunekit.backends.local.telemetry import early_stopping_arguments, report_to_argument

        o = self.options
        fields = {f.name for f in dataclasses.fields(TrainingArguments)}
        kwargs: dict[str, Any] = {
            "output_dir": str(output_dir),
            "per_device_train_batch_size": o.batch_size,
            "per_device_eval_batch_size": o.batch_size,
            "gradient_accumulation_steps": o.gradient_accumulation,
            "num_train_epochs": o.epochs,
            "learning_rate": o.learning_rate,
            "lr_scheduler_type": o.lr_scheduler,
            "weight_decay": o.weight_decay,
            "logging_steps": o.logging_steps,
            "save_strategy": "steps" if o.save_steps else "epoch",
            "save_total_limit": o.save_total_limit,
            "eval_strategy": "epoch" if has_eval else "no",
            "seed": o.seed,
            "bf16": bf16,
            "use_cpu": device == "cpu",
            "report_to": report_to_argument(o.report_to),
            "remove_unused_columns": False,
            "dataloader_num_workers": 0,
            "ddp_find_unused_parameters": False,  # every LoRA (or full) weight takes part in each step
            "disable_tqdm": False,
        }
        if o.save_steps:
            kwargs["save_steps"] = o.save_steps
        # Length-grouped batches, so dynamic padding pads little (transformers 5 / 4.x spelling).
        if "train_sampling_strategy" in fields:
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
        if o.warmup < 1 and "warmup_ratio" in fields:
            kwargs["warmup_ratio"] = o.warmup
        else:
            kwargs["warmup_steps"] = o.warmup if o.warmup < 1 else int(o.warmup)
        if o.gradient_checkpointing and not self._checkpoints_top_layers():
            kwargs["gradient_checkpointing"] = True  # every layer (transformers enables it when training starts)
        kwargs.update(early_stopping_arguments(o.early_stopping_patience, has_eval=has_eval, save_steps=o.save_steps))
        return TrainingArguments(**kwargs)

    def _report_data(self, run: Path, report: Any, eval_report: Any) -> None:
        """Write ``data_report.json`` and warn about truncated or untrainable examples (rank 0)."""
        if not distributed.is_main_process():
            return
        write_json(run / "data_report.json", {"train": report.as_dict(), "validation": eval_report.as_dict() if eval_report else None})
        for label, rep in (("training", report), ("validation", eval_report)):
            for message in rep.warnings() if rep else []:
                warnings.warn(f"{label} data: {message}", stacklevel=3)
                logger.warning("%s data: %s", label, message)

    def _result(self, run: Path, resolved: str, details: dict[str, Any]) -> FineTunedModel:
        o = self.options
        if o.full_finetune:
            model_dir = str(run / "model")
            chat_options: dict[str, Any] = {"model": model_dir}
        else:
            model_dir = str(run / "adapter")
            chat_options = {"model": o.model, "adapter": model_dir}
        if o.cache_dir is not None and not o.full_finetune:
            chat_options["cache_dir"] = o.cache_dir
        return FineTunedModel(
            backend="local",
            base_model=o.model,
            model=model_dir,
            metrics_path=str(run / "metrics.csv"),
            chat_options=chat_options,
            details=details,
        )

    def _completed(self, run: Path, fingerprints: dict) -> FineTunedModel | None:
        """The result of a finished run in ``run`` (same options, same examples), or None."""
        marker = run / COMPLETE_FILE
        if not marker.is_file():
            return None
        try:
            done = FineTunedModel.model_validate(json.loads(marker.read_text(encoding="utf-8")))
        except (ValueError, OSError) as exc:
            raise TrainingError(f"{marker} is unreadable ({exc}); delete it to train again") from exc
        if not self._same_result_options(done.details.get("options")):
            raise ConfigError(
                f"run directory {str(run)!r} holds a finished run with other options; "
                "use another run_dir, or delete that one to train again"
            )
        if done.details.get("examples") != fingerprints:
            raise ConfigError(
                f"run directory {str(run)!r} holds a finished run trained on other examples "
                f"({_differing(done.details.get('examples'), fingerprints)}); "
                "use another run_dir, or delete that one to train again"
            )
        if not Path(done.model).is_dir():
            raise TrainingError(f"{marker} names {done.model!r}, which is missing; delete {marker} to train again")
        return done


def _differing(recorded: Any, current: dict) -> str:
    """Which example sets differ from the recorded ones, e.g. ``training examples differ``."""
    if not isinstance(recorded, dict):
        return "no example fingerprints were recorded"
    names = {"train": "training", "validation": "validation"}
    return " and ".join(f"{names[k]} examples differ" for k in ("train", "validation") if recorded.get(k) != current[k])


@hookimpl
def register_trainers(register):
    """Register the ``local`` trainer."""
    register(LocalTrainer)


#: Tokens per piece with ``micro_batch_tokens="auto"`` on CPU: one or a few examples at a time.
CPU_MICRO_BATCH_TOKENS = 512


def micro_batch_budget(option: int | str | None, device: str) -> int | None:
    """Resolve ``micro_batch_tokens``: ``auto`` = :data:`CPU_MICRO_BATCH_TOKENS` on CPU (activation
    memory is the bulk of a training step's, and small matmuls cost little there), None on GPUs."""
    if option == "auto":
        return CPU_MICRO_BATCH_TOKENS if device == "cpu" else None
    return option  # type: ignore[return-value]


def last_complete_checkpoint(directory: Path) -> str | None:
    """The newest ``checkpoint-N`` in ``directory`` that was written to the end.

    ``transformers`` writes ``trainer_state.json`` last, so a checkpoint a kill cut short lacks
    it and is passed over (resuming from it would fail).
    """
    complete = [
        path for path in directory.glob("checkpoint-*")
        if path.name.split("-")[-1].isdigit() and (path / "trainer_state.json").is_file()
    ]
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None
