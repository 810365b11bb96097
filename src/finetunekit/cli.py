"""The ``finetunekit`` command: run, prepare, train, evaluate, templates, plugins.

User errors end with a one-line message and exit status 2 (1 for anything unexpected);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any, Callable, Sequence

from finetunekit.errors import FinetunekitError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (FinetunekitError, FileNotFoundError) as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc).strip().splitlines() or [type(exc).__name__]
        print(f"finetunekit: error: {message[0]}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("finetunekit: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per action."""
    parser = argparse.ArgumentParser(prog="finetunekit", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help: str, config: bool = True,
            fresh: bool = True) -> None:
        command = commands.add_parser(name, help=help, description=help)
        if config:
            command.add_argument("config", help="pipeline config file (TOML)")
        if config and fresh:
            command.add_argument("--fresh", action="store_true", help="delete the run directory and start over")
        command.set_defaults(handler=handler, fresh=False)

    add("run", _run, "prepare data, fine-tune, evaluate and write the report")
    add("prepare", _prepare, "prepare data and examples; validate them and estimate tokens and cost")
    add("train", _train, "prepare (if needed) and fine-tune")
    add("evaluate", _evaluate, "evaluate the base and the fine-tuned model of a trained run", fresh=False)
    add("templates", _templates, "list prompt template sets and the plugin that registered each", config=False)
    add("plugins", _plugins, "list installed plugins and the hooks they implement", config=False)
    return parser


def _pipeline(args: argparse.Namespace) -> Any:
    from finetunekit.pipeline import Pipeline

    return Pipeline.from_config(args.config, fresh=args.fresh)


def _run(args: argparse.Namespace) -> None:
    pipeline = _pipeline(args)
    report = pipeline.run()
    from finetunekit.evaluation.report import print_report

    print_report(report, pipeline.run_dir / "report")


def _prepare(args: argparse.Namespace) -> None:
    pipeline = _pipeline(args)
    print(pipeline.dry_run())
    prepared = pipeline.prepare()
    print(f"{len(prepared.train)} training rows, {len(prepared.test)} held-out rows, {len(prepared.examples)} examples")
    print(f"examples: {pipeline.run_dir / 'examples' / 'train.jsonl'}")


def _train(args: argparse.Namespace) -> None:
    tuned = _pipeline(args).train()
    print(f"fine-tuned model ({tuned.backend}): {tuned.model}")
    if tuned.metrics_path:
        print(f"training metrics: {tuned.metrics_path}")


def _evaluate(args: argparse.Namespace) -> None:
    pipeline = _pipeline(args)
    report = pipeline.evaluate()
    from finetunekit.evaluation.report import print_report

    print_report(report, pipeline.run_dir / "report")


def _templates(args: argparse.Namespace) -> None:
    from finetunekit.registry import registry_for

    registry = registry_for("register_prompt_templates")
    for name, template_set in registry:
        print(f"{name}  ({len(template_set.templates)} templates, plugin {registry.plugin_of(name)})")
        if template_set.description:
            print(f"    {template_set.description}")


def _plugins(args: argparse.Namespace) -> None:
    from finetunekit.plugins import BUILTIN_PLUGINS, default_plugin_manager, plugin_hooks

    for name, hooks in plugin_hooks(default_plugin_manager()).items():
        kind = "built-in" if name in BUILTIN_PLUGINS else "installed"
        print(f"{name}  [{kind}]  {', '.join(hooks) or '(no hooks)'}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
