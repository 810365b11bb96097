"""The ``finetunekit`` command: run, prepare, train, evaluate, templates, plugins.

User errors (a bad config, bad data, a busy or unwritable run directory, a failed job) end
with a one-line message naming the file that holds the details, and exit status 2; anything
unexpected exits 1 with a traceback. ``--debug`` (before or after the subcommand) shows the
traceback of a user error too. Nothing printed carries a configured secret value.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from typing import IO, Any, Callable, Iterator, Sequence

from finetunekit.errors import FinetunekitError
from finetunekit.redaction import scrub

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    with _scrubbed_output():
        try:
            args.handler(args)
        except (FinetunekitError, OSError) as exc:
            if args.debug:
                print(scrub(traceback.format_exc()), end="", file=sys.stderr)
            print(f"finetunekit: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("finetunekit: interrupted; rerun the same command to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception:  # a bug: the traceback is what a report needs (secrets scrubbed)
            print(scrub(traceback.format_exc()), end="", file=sys.stderr)
            return EXIT_INTERNAL_ERROR
    return 0


def _one_line(exc: BaseException) -> str:
    """The first line of an error's message (an ``OSError``'s: its text and file)."""
    if isinstance(exc, OSError) and not isinstance(exc, FinetunekitError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return scrub(f"{where}{exc.strerror}")
    lines = str(exc).strip().splitlines()
    return scrub(lines[0] if lines else type(exc).__name__)


class _ScrubbingStream:
    """A text stream that scrubs secret values from what is written through it."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _scrubbed_output() -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ScrubbingStream(sys.stdout), _ScrubbingStream(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per action."""
    parser = argparse.ArgumentParser(prog="finetunekit", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    debug = argparse.ArgumentParser(add_help=False)  # --debug after the subcommand too
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help: str, config: bool = True,
            fresh: bool = True) -> None:
        command = commands.add_parser(name, help=help, description=help, parents=[debug])
        if config:
            command.add_argument("config", help="pipeline config file (TOML)")
            command.add_argument("--on-error", choices=("raise", "skip"), default=None,
                                 help="malformed source records: stop with an error (raise) or skip and count "
                                 "them (skip); default: the config's dataset.on_error")
        if config and fresh:
            command.add_argument("--fresh", action="store_true",
                                 help="delete the run directory's work and start over (a hosted job still "
                                 "running is cancelled first)")
        command.set_defaults(handler=handler, fresh=False)

    add("run", _run, "prepare data, fine-tune, evaluate and write the report")
    add("prepare", _prepare, "prepare data and examples; validate them and estimate tokens and cost")
    add("train", _train, "prepare (if needed) and fine-tune")
    add("evaluate", _evaluate, "evaluate the base and the fine-tuned model of a trained run", fresh=False)
    add("templates", _templates, "list prompt template sets and the plugin that registered each", config=False)
    add("plugins", _plugins, "list installed plugins and the hooks they implement", config=False)
    return parser


@contextlib.contextmanager
def _pipeline(args: argparse.Namespace) -> Iterator[Any]:
    """The command's pipeline, its run directory locked for the whole command."""
    from finetunekit.config import load_config
    from finetunekit.pipeline import Pipeline
    from finetunekit.run_lock import hold_run_dir

    config = load_config(args.config)
    if args.on_error is not None:
        config = config.model_copy(update={"dataset": config.dataset.model_copy(update={"on_error": args.on_error})})
    with hold_run_dir(config.run_dir):
        yield Pipeline(config, fresh=args.fresh)


def _run(args: argparse.Namespace) -> None:
    with _pipeline(args) as pipeline:
        report = pipeline.run()
    from finetunekit.evaluation.report import print_report

    print_report(report, pipeline.run_dir / "report")


def _prepare(args: argparse.Namespace) -> None:
    with _pipeline(args) as pipeline:
        print(pipeline.dry_run())
        prepared = pipeline.prepare()
    print(f"{len(prepared.train)} training rows, {len(prepared.test)} held-out rows, {len(prepared.examples)} examples")
    print(f"examples: {pipeline.run_dir / 'examples' / 'train.jsonl'}")


def _train(args: argparse.Namespace) -> None:
    with _pipeline(args) as pipeline:
        tuned = pipeline.train()
    print(f"fine-tuned model ({tuned.backend}): {tuned.model}")
    if tuned.metrics_path:
        print(f"training metrics: {tuned.metrics_path}")


def _evaluate(args: argparse.Namespace) -> None:
    with _pipeline(args) as pipeline:
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
