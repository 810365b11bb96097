"""``Pipeline``: runs every stage from one ``PipelineConfig`` into one run directory.

Stages: ``prepare`` (rows → cleaned sample → train/test split → chat examples → validation),
``train`` (the configured trainer) and ``evaluate`` (base vs fine-tuned on three eval sets).
A rerun with the same run directory skips completed stages and resumes an interrupted one
(trainer checkpoints, a recorded OpenAI job, cached answers); a changed config is refused
unless ``fresh=True`` — except after a failed training stage, which a fixed config retries.
Every stage holds the run directory's lock (:mod:`finetunekit.run_lock`): a second process
on the same directory fails at once instead of starting a second training job.

Under ``torchrun`` / ``accelerate launch`` every process runs the same pipeline: rank 0 holds the
lock, opens the manifest, prepares the data and writes every run file; the others wait, then read
what it wrote; training is data-parallel (``transformers.Trainer``) and evaluation splits the
questions across the processes (:mod:`finetunekit.distributed`).
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import pluggy

from finetunekit import distributed
from finetunekit.atomic import atomic_open, write_json, write_text
from finetunekit.config import PipelineConfig, load_config, parse_config
from finetunekit.errors import ConfigError
from finetunekit.manifest import RunManifest
from finetunekit import memory
from finetunekit.plugins import resolve_plugin_manager
from finetunekit.redaction import redact
from finetunekit.run_lock import LOCK_NAME, hold_run_dir


STAGES = ("prepare", "train", "evaluate")
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _locked(method: _Method) -> _Method:
    """Run a stage holding the run directory's lock (re-entrant: ``run`` calls the others)."""

    @functools.wraps(method)
    def wrapper(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        with hold_run_dir(self.run_dir):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass
class PreparedData:
    """What the prepare stage produced."""

    train: Any  # Dataset
    test: Any  # Dataset
    examples: Any  # ExampleSet: what is trained on (positives, then any negatives)
    validation: dict[str, Any]
    calibration: Any = None  # Dataset of held-out rows to calibrate abstention on, or None
    negatives: Any = None  # Dataset of held-out rows trained to be refused, or None
    positives: Any = None  # ExampleSet of the train rows alone (what train-questions asks)
    validation_examples: Any = None  # ExampleSet of held-out rows the trainer reports an eval loss on, or None


class Pipeline:
    """Runs prepare → train → evaluate from a config, writing everything into ``config.run_dir``."""

    def __init__(
        self, config: PipelineConfig, *, plugins: pluggy.PluginManager | None = None, fresh: bool = False
    ) -> None:
        self.plugins = resolve_plugin_manager(plugins)  # one set of plugins for the whole run
        config.check_components(self.plugins)
        self.config = config
        self.run_dir = Path(config.run_dir)
        with hold_run_dir(self.run_dir):  # rank 0 opens (or creates) the manifest; the others then read it
            self.manifest = distributed.main_first(lambda: self._open_manifest(fresh), others=lambda: RunManifest.load(self.run_dir))
        self._prepared: PreparedData | None = None
        self._formatter_object: Any = None

    @classmethod
    def from_config(
        cls, config: PipelineConfig | Mapping[str, Any] | str | Path, **kwargs: Any
    ) -> Pipeline:
        """A pipeline from a config object, a mapping, or the path of a TOML file."""
        if isinstance(config, (str, Path)):
            config = load_config(config)
        elif not isinstance(config, PipelineConfig):
            config = parse_config(dict(config))
        return cls(config, **kwargs)

    # -- stages ---------------------------------------------------------------------------

    @_locked
    def run(self) -> Any:
        """Every stage in order; returns the EvaluationReport."""
        return self.evaluate(train_if_needed=True)

    @_locked
    def prepare(self) -> PreparedData:
        """Load, clean, sample and split the rows; build the chat examples and check them with the
        trainer's own checks (:meth:`Trainer.check`). Done once per pipeline; later calls (and
        the later stages) reuse what it produced."""
        if self._prepared is None:  # rank 0 prepares; the other processes then read its files
            self._prepared = distributed.main_first(self._prepare, others=self._read_prepared)
        return self._prepared

    def _prepare(self) -> PreparedData:
        data_dir = self.run_dir / "data"
        if not self.manifest.completed("prepare"):
            with self.manifest.stage("prepare") as record:
                train, test, extra, facts = self._sample_rows()
                _write_rows(data_dir / "train.jsonl", train.records())
                _write_rows(data_dir / "test.jsonl", test.records())
                for name, rows in extra.items():
                    _write_rows(data_dir / f"{name}.jsonl", rows.records())
                positives, examples = self._examples(train, extra.get("negatives"))
                examples.to_jsonl(self.run_dir / "examples" / "train.jsonl")
                held_out = self._validation_examples(extra.get("validation"))
                report = self._trainer().check(examples)
                write_json(self.run_dir / "examples" / "validation.json", report.model_dump(mode="json"))
                write_text(self.run_dir / "examples" / "validation.txt", str(report))
                record.update(facts, examples=len(examples), examples_fingerprint=examples.fingerprint())
                if not report.ok:
                    raise ConfigError(_examples_error(report, self.run_dir / "examples" / "validation.txt"))
            validation = report.model_dump(mode="json")
            return PreparedData(train=train, test=test, examples=examples, validation=validation,
                                calibration=extra.get("calibration"), negatives=extra.get("negatives"),
                                positives=positives, validation_examples=held_out)
        from finetunekit.data.dataset import Dataset

        def saved(name: str) -> Any:
            path = data_dir / f"{name}.jsonl"
            return Dataset.from_records(_read_rows(path)) if path.exists() else None

        train, test, calibration, negatives = (saved(n) for n in ("train", "test", "calibration", "negatives"))
        positives, examples = self._examples(train, negatives)
        held_out = self._validation_examples(saved("validation"))
        recorded = self.manifest.stage_info("prepare").get("examples_fingerprint")
        if recorded and examples.fingerprint() != recorded:
            raise ConfigError(
                f"{self.run_dir}: the examples rebuilt from the saved rows differ from the recorded ones "
                "(a template or formatter plugin changed?); rerun with a fresh run directory"
            )
        validation = json.loads((self.run_dir / "examples" / "validation.json").read_text(encoding="utf-8"))
        return PreparedData(train=train, test=test, examples=examples, validation=validation,
                            calibration=calibration, negatives=negatives, positives=positives,
                            validation_examples=held_out)

    @_locked
    def dry_run(self) -> str:
        """Prepare, then ask the trainer what training would do (tokens, epochs, cost); train nothing.

        The answer is also written to ``examples/dry_run.txt``.
        """
        prepared = self.prepare()
        text = str(self._trainer().dry_run(prepared.examples, run_dir=self.run_dir / "dry_run"))
        if distributed.is_main_process():
            write_text(self.run_dir / "examples" / "dry_run.txt", text + "\n")
        return text

    @_locked
    def train(self) -> Any:
        """Fine-tune (resuming an interrupted run); returns the FineTunedModel."""
        from finetunekit.training import FineTunedModel

        result_path = self.run_dir / "train" / "fine_tuned_model.json"
        if not (self.manifest.completed("train") and result_path.exists()):
            prepared = self.prepare()
            trainer = self._trainer()
            with self.manifest.stage("train") as record:
                tuned = trainer.train(prepared.examples, validation=prepared.validation_examples,
                                      run_dir=self.run_dir / "train")
                if distributed.is_main_process():  # the others' result lacks the details
                    write_json(result_path, redact(tuned.model_dump(mode="json")))
                record.update(model=tuned.model, backend=tuned.backend)
            del trainer
            memory.collect_and_release()  # the trained model and its optimizer go before evaluation loads its models
            distributed.barrier()  # every process reads the result rank 0 wrote
        return FineTunedModel.model_validate_json(result_path.read_text(encoding="utf-8"))

    @_locked
    def evaluate(self, *, train_if_needed: bool = False) -> Any:
        """Answer the eval sets with the base and the fine-tuned model; save the report."""
        from finetunekit.evaluation.evaluator import Evaluator
        from finetunekit.evaluation.report import EvaluationReport

        report_dir = self.run_dir / "report"
        if self.manifest.completed("evaluate") and (report_dir / "summary.csv").exists():
            return EvaluationReport.load(report_dir)
        if not train_if_needed and not self.manifest.completed("train"):
            raise ConfigError(
                f"{self.run_dir} holds no trained model yet; run `finetunekit train CONFIG` "
                "(or `finetunekit run CONFIG`) first"
            )
        prepared = self.prepare()
        tuned = self.train()
        eval_sets = self._eval_sets(prepared)
        tuned_options = self._chat_options(tuned.backend, "fine-tuned")
        with self.manifest.stage("evaluate") as record, distributed.split_work():
            if self.config.evaluation.abstain:
                calibration = self._calibrate(prepared, tuned, tuned_options)
                tuned_options["abstain_below"] = calibration.threshold
                record.update(calibration=calibration.to_dict())
            models = {
                "base": self._base_chat_model(),
                "fine-tuned": tuned.chat_model(plugins=self.plugins, **tuned_options),
            }
            evaluator = Evaluator(metrics=self.config.metric_specs(), plugins=self.plugins)
            report = evaluator.evaluate(models, eval_sets)
            if distributed.is_main_process():
                report.save(report_dir, training_metrics=tuned.metrics_path)
            record.update(questions={s.name: len(s) for s in eval_sets})
        return report

    # -- helpers --------------------------------------------------------------------------

    def _read_prepared(self) -> PreparedData:
        """The prepare stage of the processes other than rank 0: read the manifest and the
        rows rank 0 wrote, and rebuild the examples from them."""
        self.manifest = RunManifest.load(self.run_dir)
        return self._prepare()

    def _open_manifest(self, fresh: bool) -> RunManifest:
        existing = RunManifest.load(self.run_dir)
        if existing is not None and fresh:
            self._stop_unfinished_training(existing)
            _empty(self.run_dir)
            existing = None
        current = self.config.stage_fingerprints(self.plugins)
        if existing is None:
            if any(p.name != LOCK_NAME for p in self.run_dir.iterdir()):
                raise ConfigError(f"{self.run_dir} exists, is not empty and holds no finetunekit run; choose another run_dir")
            return RunManifest.create(
                self.run_dir, config=self.config.to_record(), fingerprints=current, seed=self.config.seed
            )
        recorded = existing.data.get("fingerprints", {})
        changed = [stage for stage in STAGES if recorded.get(stage) != current[stage]]
        for stage in changed:  # finished data or training work is never silently redone or mixed
            status = existing.stage_info(stage).get("status")
            if stage != "evaluate" and (status == "completed" or (stage == "train" and status == "running")):
                raise ConfigError(
                    f"{self.run_dir} was made with a different config (its {stage} settings differ"
                    + (", and its training was interrupted" if status == "running" else "")
                    + "); use another run_dir, or ask for a fresh run (--fresh / fresh=True) to start it over"
                )
        if "train" in changed and existing.stage_info("train").get("status") == "failed":
            self._stop_unfinished_training(existing)  # a failed training retried with a fixed config
            shutil.rmtree(self.run_dir / "train", ignore_errors=True)
        if changed:  # only unfinished stages, or evaluation, changed: run them (and what follows) again
            for stage in STAGES[STAGES.index(changed[0]):]:
                existing.forget(stage)
            existing.data.update(config=self.config.to_record(), fingerprints=current)
            existing.save()
        return existing

    def _stop_unfinished_training(self, existing: RunManifest) -> None:
        """Before training work is deleted: have the trainer stop what may still run (a hosted
        job); the run directory's lock already proves no local process works in it."""
        if existing.stage_info("train").get("status") in (None, "completed"):
            return
        done = self._trainer().stop_unfinished(self.run_dir / "train")
        if done:
            existing.data["stages"]["train"]["stopped"] = done
            existing.save()

    def _sample_rows(self) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
        from finetunekit.data.dataset import Dataset

        cfg = self.config.dataset
        source = cfg.source
        dataset = Dataset.load(
            source, format=cfg.format, columns=cfg.columns, limit=cfg.limit, on_error=cfg.on_error,
            plugins=self.plugins, loader_options=cfg.loader_options,
        )
        if cfg.chat_format is not None:  # finished chat examples: converted, never cleaned
            from finetunekit.examples.chat_formats import chat_rows

            cleaned = chat_rows(dataset, cfg.chat_format, source)
        else:
            cleaned = dataset.clean(
                required=tuple(cfg.clean.required),
                min_content_length=cfg.clean.min_content_length,
                drop_duplicate_titles=cfg.clean.drop_duplicate_titles,
                rules=cfg.clean.rules,
                plugins=self.plugins,
            )
        if cfg.sample_size:  # one streaming pass; the sample keeps that pass's reports
            chosen = cleaned.sample(cfg.sample_size, seed=self.config.seed)
        else:  # every row: read the source once, then work in memory
            chosen = Dataset.from_records(cleaned.records())
            chosen_report = cleaned.clean_report
        train, test = chosen.split(_size(cfg.test_size), seed=self.config.seed)
        extra: dict[str, Any] = {}  # further held-out rows, each split off what is left for training
        for name, size in (("calibration", cfg.calibration_size), ("negatives", cfg.negative_size),
                           ("validation", cfg.validation_size)):
            if size:
                train, extra[name] = train.split(_size(size), seed=self.config.seed)
        facts = {
            "source": str(source),
            "data_fingerprint": chosen.fingerprint(),
            "rows_train": len(train),
            "rows_test": len(test),
            **{f"rows_{name}": len(rows) for name, rows in extra.items()},
            "clean_report": _plain(chosen.clean_report if cfg.sample_size else chosen_report),
            "load_report": _plain((chosen if cfg.sample_size else cleaned).load_report.as_dict()),
        }
        return train, test, extra, facts

    def _examples(self, train: Any, negatives: Any = None) -> tuple[Any, Any]:
        """(the train rows' examples, what is trained on: those and the negative rows' refusals)."""
        from finetunekit.examples.build import build_examples
        from finetunekit.examples.example_set import ExampleSet
        from finetunekit.examples.formatters import resolve_formatter
        from finetunekit.examples.prompts import PromptGenerator

        cfg = self.config
        if cfg.dataset.chat_format is not None:
            chats = self._chat_examples(train)
            return chats, chats
        prompts = PromptGenerator(cfg.prompts.train, seed=cfg.seed, plugins=self.plugins)
        k = "all" if cfg.prompts.expand else cfg.prompts.questions_per_row
        positives = build_examples(train, prompts, self._formatter(), system=cfg.system, questions_per_row=k)
        if negatives is None:
            return positives, positives
        refusal = resolve_formatter(cfg.refusal_formatter, plugins=self.plugins)
        refusals = build_examples(negatives, prompts, refusal, system=cfg.system, questions_per_row=k)
        metadata = [*positives.metadata, *({**m, "negative": True} for m in refusals.metadata)]
        return positives, ExampleSet([*positives.examples, *refusals.examples], metadata)

    def _chat_examples(self, rows: Any) -> Any:
        """The examples of chat rows (``dataset.chat_format``), with the config's system message."""
        from finetunekit.examples.chat_formats import examples_from_rows

        return examples_from_rows(rows.records(), self.config.dataset.source, system=self.config.system)

    def _validation_examples(self, rows: Any) -> Any:
        """The examples of the held-out validation rows (``dataset.validation_size``), written to
        ``examples/validation_set.jsonl``; None without such rows. Errors in them stop the run."""
        if rows is None:
            return None
        examples = self._examples(rows)[0]
        if distributed.is_main_process():
            examples.to_jsonl(self.run_dir / "examples" / "validation_set.jsonl")
        report = examples.validate()
        if not report.ok:
            raise ConfigError(f"the validation examples (dataset.validation_size) have errors:\n{report}")
        return examples

    def _formatter(self) -> Any:
        from finetunekit.examples.formatters import resolve_formatter

        if self._formatter_object is None:
            self._formatter_object = resolve_formatter(self.config.formatter, plugins=self.plugins)
        return self._formatter_object

    def _eval_sets(self, prepared: PreparedData) -> list[Any]:
        from finetunekit.evaluation.evalsets import build_eval_sets

        if self.config.dataset.chat_format is not None:
            from finetunekit.evaluation.chat_evalsets import chat_eval_sets

            held_out = self._chat_examples(prepared.test)
            return chat_eval_sets(prepared.examples, held_out, limit=self.config.evaluation.limit, seed=self.config.seed)

        return build_eval_sets(
            prepared.positives if prepared.positives is not None else prepared.examples,
            prepared.test,
            train_dataset=prepared.train,
            paraphrase_prompts=self.config.prompts.paraphrased,
            formatter=self._formatter(),
            system=self.config.system,
            seed=self.config.seed,
            limit=self.config.evaluation.limit,
            plugins=self.plugins,
        )

    def _calibrate(self, prepared: PreparedData, tuned: Any, options: dict[str, Any]) -> Any:
        """The fine-tuned model answers the calibration questions; its confidence on them sets
        the abstention threshold (written to ``report/calibration.json``)."""
        from finetunekit.evaluation.calibration import calibration_questions
        from finetunekit.evaluation.confidence import calibrate_threshold
        from finetunekit.examples.prompts import PromptGenerator

        cfg = self.config
        prompts = PromptGenerator(cfg.prompts.train, seed=cfg.seed, plugins=self.plugins)
        questions = calibration_questions(
            prepared.positives, prepared.train.records(), prepared.calibration.records(), prompts,
            system=cfg.system, seed=cfg.seed,
        )
        calibrating = {**options, "answer_cache_dir": str(self.run_dir / "answers" / "fine-tuned-calibration")}
        model = tuned.chat_model(plugins=self.plugins, **calibrating)
        scored = model.answer_scored(questions.known + questions.unknown)
        model.release()
        if any(answer.confidence is None for answer in scored):
            raise ConfigError(f"evaluation.abstain: the {tuned.backend!r} chat model gives no confidence scores")
        scores = [answer.confidence for answer in scored]
        calibration = calibrate_threshold(
            scores[: len(questions.known)], scores[len(questions.known):],
            max_false_refusal=cfg.evaluation.max_false_refusal,
        )
        if distributed.is_main_process():
            write_json(self.run_dir / "report" / "calibration.json", {
                **calibration.to_dict(), "known_row_ids": questions.known_ids, "unknown_row_ids": questions.unknown_ids,
                "known_scores": scores[: len(questions.known)], "unknown_scores": scores[len(questions.known):],
            })
        return calibration

    def _trainer(self) -> Any:
        """The configured trainer, with the values the pipeline provides to the options that
        declare them (``option(pipeline="seed")``)."""
        from finetunekit.registry import registry_for

        cls = registry_for("register_trainers", self.plugins).get(self.config.trainer.name)
        options = self._provided(cls.Options, dict(self.config.trainer.options), label="trainer")
        return cls.from_options(options, plugins=self.plugins)

    def _chat_options(self, backend: str, label: str) -> dict[str, Any]:
        """The evaluation's chat options, plus what the pipeline provides to the options the
        backend declares (an answer cache per model in the run directory, the run's seed)."""
        from finetunekit.registry import registry_for

        cls = registry_for("register_chat_models", self.plugins).get(backend)
        return self._provided(cls.Options, dict(self.config.evaluation.chat_options), label=label)

    def _provided(self, options_cls: Any, options: dict[str, Any], *, label: str) -> dict[str, Any]:
        values = {"seed": self.config.seed, "answer_cache_dir": str(self.run_dir / "answers" / label)}
        pipeline_fields = options_cls.pipeline_fields() if hasattr(options_cls, "pipeline_fields") else {}
        for field, value in pipeline_fields.items():
            options.setdefault(field, values[value])
        return options

    def _base_chat_model(self) -> Any:
        from finetunekit.registry import get_chat_model

        base = self.config.evaluation.base_model
        options = {**self._chat_options(base.name, "base"), **base.options}
        return get_chat_model(base.name, plugins=self.plugins, **options)


def _examples_error(report: Any, details: Path) -> str:
    """One line: how many errors, the first few, and the file with all of them."""
    shown = "; ".join(str(issue) for issue in report.errors[:3])
    more = f" (and {len(report.errors) - 3} more)" if len(report.errors) > 3 else ""
    return f"the training examples have {len(report.errors)} error(s): {shown}{more}; details in {details}"


def _empty(run_dir: Path) -> None:
    """Delete everything in ``run_dir`` but its lock file (held by this process)."""
    for path in run_dir.iterdir():
        if path.name == LOCK_NAME:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _size(size: float) -> float | int:
    """A split size as Dataset.split takes it: a fraction below 1, else a count."""
    return size if size < 1 else int(size)


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dict__"):
        return dict(vars(value))
    return str(value)
