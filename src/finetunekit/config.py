"""``PipelineConfig``: one validated description of a whole run, loadable from TOML."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Literal

import pluggy
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finetunekit.component import format_validation_error, validate_options, validate_partial_options
from finetunekit.errors import ConfigError
from finetunekit.evaluation.metrics import DEFAULT_METRICS
from finetunekit.redaction import collect_secrets

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib



#: Dataset fields added after run directories were recorded, with their defaults: left out of the
#: fingerprints at those defaults, so that a run made before them is still resumed, not refused.
LATER_DATASET_FIELDS: dict[str, Any] = {
    "validation_size": 0, "chat_format": None, "loader_options": {}, "on_error": "raise",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CleanConfig(_Section):
    """How rows are cleaned before sampling."""

    required: list[str] = Field(
        default_factory=lambda: ["title", "content"],
        description="Fields that must be present and non-empty; other rows are dropped.",
    )
    min_content_length: int = Field(default=0, ge=0, description="Drop rows whose content is shorter (characters).")
    drop_duplicate_titles: bool = Field(default=True, description="Keep only the first row of each title.")
    rules: list[str] = Field(
        default_factory=list,
        description="Registered cleaning rules (junk contents, boilerplate to cut), by name.",
    )


class DatasetConfig(_Section):
    """Where rows come from and which of them are used."""

    source: str = Field(
        description="Path of the source file (JSON Lines, .json.gz, CSV, Parquet), or package:PACKAGE/FILE "
        "for a file shipped inside an installed package (a plugin's sample data).",
    )
    format: str | None = Field(default=None, description="Loader name; unset means: by file suffix.")
    columns: dict[str, str] | None = Field(
        default=None, description="Map from source field names to the names templates use (only mapped fields are kept)."
    )
    limit: int | None = Field(default=None, gt=0, description="Read at most this many source rows.")
    on_error: Literal["raise", "skip"] = Field(
        default="raise", description="A malformed source record (broken JSON, a wrong-typed field): \"raise\" "
        "stops with an error naming its file and line; \"skip\" skips it and counts it in the manifest's load_report.",
    )
    clean: CleanConfig = Field(default_factory=CleanConfig, description="Cleaning rules.")
    sample_size: int | None = Field(
        default=None, gt=0, description="Rows drawn (seeded) after cleaning, before the split; unset means all."
    )
    test_size: float = Field(
        default=0.2, gt=0, description="Held-out rows for unseen-products: a fraction (< 1) or a count (>= 1)."
    )
    calibration_size: float = Field(
        default=0, ge=0, description="Further held-out rows on which abstention is calibrated (never the eval "
        "rows): a fraction (< 1) or a count (>= 1); 0 = none.",
    )
    negative_size: float = Field(
        default=0, ge=0, description="Further held-out rows trained to be refused (refusal_formatter): a fraction "
        "(< 1) or a count (>= 1); 0 = none.",
    )
    validation_size: float = Field(
        default=0, ge=0, description="Further held-out rows (never trained on, nor in test or calibration) whose "
        "examples the trainer reports an eval loss on, once per epoch: a fraction (< 1) or a count (>= 1); 0 = none.",
    )
    chat_format: Literal["messages", "sharegpt", "alpaca"] | None = Field(
        default=None, description="The source rows are chat examples already (OpenAI messages, ShareGPT "
        "conversations, Alpaca instruction/input/output): no prompts, formatter or cleaning; unset = tabular rows.",
    )
    loader_options: dict[str, Any] = Field(
        default_factory=dict, description="Further options for the loader, e.g. {split = \"test\"} for format "
        "\"datasets\".",
    )


class PromptsConfig(_Section):
    """Which question templates are used."""

    train: str = Field(description="Template set used for the training questions.")
    paraphrased: str | None = Field(
        default=None,
        description="Template set for the paraphrased eval split; must share no template with `train`. "
        "Unset: no paraphrased split.",
    )
    expand: bool = Field(default=False, description="Use every training template for every row (= questions_per_row \"all\").")
    questions_per_row: int | Literal["all"] = Field(
        default=1,
        description="Training questions per row, each from a different template (seeded); \"all\" = every template. "
        "Keep questions_per_row x epochs about constant to keep the compute.",
    )


class ComponentConfig(_Section):
    """A registered component by name, with options that its own Options model validates."""

    name: str = Field(description="Registered name of the component.")
    options: dict[str, Any] = Field(default_factory=dict, description="Options for the component.")


class EvaluationConfig(_Section):
    """What is measured, on which models."""

    metrics: list[str | ComponentConfig] = Field(
        default_factory=lambda: list(DEFAULT_METRICS),
        description="Metrics: names, or {name = ..., options = {...}} for a metric with options.",
    )
    base_model: ComponentConfig = Field(
        default_factory=lambda: ComponentConfig(name="local", options={"model": "smollm2-135m-instruct"}),
        description="The chat model that answers as the base model.",
    )
    chat_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options given to both chat models (base and fine-tuned), e.g. max_new_tokens.",
    )
    limit: int | None = Field(default=None, gt=0, description="At most this many questions per eval split.")
    abstain: bool = Field(
        default=False, description="Calibrate a confidence threshold on the dataset's calibration rows and have "
        "the fine-tuned model say it does not know below it (a chat backend that scores its answers).",
    )
    max_false_refusal: float = Field(
        default=0.02, ge=0, lt=1, description="The calibrated threshold refuses at most this share of the "
        "calibration questions about trained products.",
    )


class PipelineConfig(_Section):
    """A whole run: data, examples, training and evaluation."""

    run_dir: str = Field(default="runs/finetunekit", description="Directory that receives every artifact.")
    seed: int = Field(default=42, description="Seed for sampling, splitting, template choice and training.")
    dataset: DatasetConfig = Field(description="Source rows.")
    prompts: PromptsConfig | None = Field(
        default=None, description="Question templates (required unless dataset.chat_format is set)."
    )
    formatter: str | None = Field(
        default=None, description="Registered response formatter name, or a template string with {field} "
        "placeholders (required unless dataset.chat_format is set).",
    )
    system: str | None = Field(default=None, description="System message put before every question.")
    refusal_formatter: str | None = Field(
        default=None, description="Formatter (name or template) of the answer trained for negative products "
        "(dataset.negative_size); e.g. \"I don't know {title}.\"",
    )
    trainer: ComponentConfig = Field(
        default_factory=lambda: ComponentConfig(name="local", options={"model": "smollm2-135m-instruct"}),
        description="The trainer and its options.",
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Evaluation settings.")

    def fingerprint(self, plugins: pluggy.PluginManager | None = None) -> str:
        """A stable hash of the settings that change a run's results (``run_dir`` excluded)."""
        return self.stage_fingerprints(plugins)["evaluate"]

    def to_record(self) -> dict[str, Any]:
        """The config as JSON-safe data: objects such as an SDK client become ``"<ClientType>"``."""
        return self.model_dump(mode="json", fallback=lambda value: f"<{type(value).__name__}>")

    def stage_fingerprints(self, plugins: pluggy.PluginManager | None = None) -> dict[str, str]:
        """A hash per stage of the settings it depends on: ``prepare`` (data, prompts, formatter,
        system, seed), ``train`` (those and the trainer's result-changing options), ``evaluate``
        (all of them). Options that the trainer's ``Options`` declare ``affects_result=False``
        (connection, polling, logging) are left out, so changing a timeout never blocks
        resuming a run."""
        from finetunekit.registry import registry_for

        data = self.to_record()
        data.pop("run_dir")
        for key, default in LATER_DATASET_FIELDS.items():  # runs recorded before these fields existed still match
            if data["dataset"].get(key) == default:
                data["dataset"].pop(key)
        trainer_cls = registry_for("register_trainers", plugins).get(self.trainer.name)
        options = trainer_cls.Options.result_options(data["trainer"]["options"])
        prepare = {key: data[key] for key in ("seed", "dataset", "prompts", "formatter", "system", "refusal_formatter")}
        train = {**prepare, "trainer": {"name": data["trainer"]["name"], "options": options}}
        stages = {"prepare": prepare, "train": train, "evaluate": {**train, "evaluation": data["evaluation"]}}
        return {
            stage: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
            for stage, value in stages.items()
        }

    def check_components(self, plugins: pluggy.PluginManager | None = None) -> None:
        """Check that every named component exists and that its options are valid."""
        from finetunekit.plugins import resolve_plugin_manager
        from finetunekit.registry import registry_for

        plugins = resolve_plugin_manager(plugins)
        _check_data_kind(self)
        trainer = _lookup("register_trainers", self.trainer.name, "trainer.name", plugins)
        validate_options(trainer.Options, self.trainer.options, where="trainer.options")
        base = self.evaluation.base_model
        base_model = _lookup("register_chat_models", base.name, "evaluation.base_model.name", plugins)
        validate_options(
            base_model.Options, {**self.evaluation.chat_options, **base.options}, where="evaluation.base_model.options"
        )
        chat_models = registry_for("register_chat_models", plugins)
        tuned_backend = trainer.chat_backend or trainer.name
        if tuned_backend in chat_models:  # the fine-tuned model answers through this backend; the
            # trainer supplies the options its result needs (the model id), so only the given ones are checked
            validate_partial_options(
                chat_models.get(tuned_backend).Options, self.evaluation.chat_options, where="evaluation.chat_options"
            )
        for i, metric in enumerate(self.evaluation.metrics):
            spec = metric if isinstance(metric, ComponentConfig) else ComponentConfig(name=metric)
            cls = _lookup("register_metrics", spec.name, f"evaluation.metrics[{i}]", plugins)
            validate_options(cls.Options, spec.options, where=f"evaluation.metrics[{i}].options")
        if self.prompts is not None:  # chat examples (dataset.chat_format) have no templates
            _check_prompts(self.prompts, plugins)
        if self.dataset.negative_size and self.refusal_formatter is None:
            raise ConfigError("dataset.negative_size needs refusal_formatter: the answer trained for negative products")
        if self.evaluation.abstain and not self.dataset.calibration_size:
            raise ConfigError("evaluation.abstain needs dataset.calibration_size: held-out rows to calibrate on")
        for i, rules in enumerate(self.dataset.clean.rules):
            _lookup("register_cleaning_rules", rules, f"dataset.clean.rules[{i}]", plugins)

    def metric_specs(self) -> list[str | dict[str, Any]]:
        """The metrics as the Evaluator takes them (names, or name + options)."""
        return [m if isinstance(m, str) else m.model_dump() for m in self.evaluation.metrics]


def _check_prompts(prompts: PromptsConfig, plugins: pluggy.PluginManager) -> None:
    sets = {"prompts.train": prompts.train}
    if prompts.paraphrased is not None:
        sets["prompts.paraphrased"] = prompts.paraphrased
    found = {where: _lookup("register_prompt_templates", name, where, plugins) for where, name in sets.items()}
    if "prompts.paraphrased" in found:
        shared = set(found["prompts.train"].templates) & set(found["prompts.paraphrased"].templates)
        if shared:
            raise ConfigError(f"prompts.paraphrased shares templates with prompts.train: {sorted(shared)}")


def _check_data_kind(config: PipelineConfig) -> None:
    """Tabular rows need ``prompts`` and ``formatter``; chat examples (``dataset.chat_format``)
    take no templates, formatter, cleaning, negatives or abstention."""
    if config.dataset.chat_format is None:
        missing = [name for name in ("prompts", "formatter") if getattr(config, name) is None]
        if missing:
            raise ConfigError(
                "; ".join(f"{name}: Field required" for name in missing)
                + " (tabular rows need them; for finished chat examples set dataset.chat_format instead)"
            )
        return
    chat_only = {
        "prompts": config.prompts is not None,
        "formatter": config.formatter is not None,
        "refusal_formatter": config.refusal_formatter is not None,
        "dataset.clean": "clean" in config.dataset.model_fields_set,
        "dataset.negative_size": bool(config.dataset.negative_size),
        "evaluation.abstain": config.evaluation.abstain,
    }
    given = [name for name, set_ in chat_only.items() if set_]
    if given:
        raise ConfigError(
            f"dataset.chat_format = {config.dataset.chat_format!r} reads finished chat examples; "
            f"{', '.join(given)} only apply to tabular rows: remove them"
        )


def _lookup(hook: str, name: str, where: str, plugins: pluggy.PluginManager | None) -> Any:
    from finetunekit.registry import UnknownComponentError, registry_for

    try:
        return registry_for(hook, plugins).get(name)
    except UnknownComponentError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def parse_config(data: dict[str, Any], *, source: str = "config") -> PipelineConfig:
    """Validate a mapping as a PipelineConfig; errors name their path (``trainer.options.x``).

    Secret values in ``data`` are registered for scrubbing first (see :mod:`finetunekit.redaction`);
    an error chains no pydantic error (its text quotes the offending input).
    """
    collect_secrets(data)
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        message = f"{source}: {format_validation_error(exc)}"
        raise ConfigError(message) from None
    try:
        _check_data_kind(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; expected a TOML config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: undecodable byte 0x{raw[exc.start]:02x}; "
                          "expected a UTF-8 text file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, source=str(path))


