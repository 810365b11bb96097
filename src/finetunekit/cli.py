"""The ``finetunekit`` command: run, prepare, train, evaluate, serve, export, templates, plugins.

User errors (a bad config, bad data, a busy or unwritable run directory, a failed job) end
with a one-line message naming the file that holds the details, and exit status 2; anything
unexpected exits 1 with a traceback. ``--debug`` (before or after the subcommand) shows the
traceback of a user error too. Nothing printed carries a configured secret value.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import traceback
from typing import IO, Any, Callable, Iterator, Sequence

from finetunekit import distributed
from finetunekit.errors import FinetunekitError
from finetunekit.redaction import scrub

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    # under torchrun / accelerate launch only rank 0 prints results (the others' would repeat them)
    quiet = contextlib.nullcontext() if distributed.is_main_process() else contextlib.redirect_stdout(io.StringIO())
    with _scrubbed_output():
        try:
            with quiet:
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
    _add_serve(commands, debug)
    _add_export(commands, debug)
    add("templates", _templates, "list prompt template sets and the plugin that registered each", config=False)
    add("plugins", _plugins, "list installed plugins and the hooks they implement", config=False)
    return parser


def _add_target(command: argparse.ArgumentParser) -> None:
    command.add_argument("target", metavar="RUN_DIR", help="a run directory, a PEFT adapter directory, or a model "
                         "name/directory (then --adapter adds an adapter)")
    command.add_argument("--adapter", help="a PEFT adapter directory to apply to the model named by RUN_DIR")
    command.add_argument("--cache-dir", help="where converted models are cached")


def _add_serve(commands: Any, debug: argparse.ArgumentParser) -> None:
    help = "serve a fine-tuned local model over an OpenAI-compatible HTTP API"
    command = commands.add_parser("serve", help=help, description=help, parents=[debug])
    _add_target(command)
    command.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    command.add_argument("--port", type=int, default=8000, help="port to listen on; 0 = any free port (default: 8000)")
    command.add_argument("--model-name", help="the model id clients ask for (default: the run directory's name)")
    command.add_argument("--api-key-env", metavar="VAR", help="require 'Authorization: Bearer KEY', KEY being "
                         "the value of this environment variable")
    command.add_argument("--max-batch", type=int, default=32, help="most requests generated together (default: 32)")
    command.add_argument("--max-wait-ms", type=float, default=5.0,
                         help="how long a request waits for others to join its batch (default: 5)")
    command.add_argument("--max-request-bytes", type=int, default=1_000_000,
                         help="largest request body accepted (default: 1000000)")
    command.add_argument("--max-tokens", type=int, default=256,
                         help="answer length when a request gives no max_tokens (default: 256)")
    command.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    command.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="float32")
    command.set_defaults(handler=_serve, fresh=False)


def _add_export(commands: Any, debug: argparse.ArgumentParser) -> None:
    help = "export a fine-tuned local model: merged safetensors, or GGUF (+ Ollama Modelfile)"
    command = commands.add_parser("export", help=help, description=help, parents=[debug])
    _add_target(command)
    command.add_argument("--format", choices=["merged", "gguf"], required=True, dest="export_format")
    command.add_argument("--outtype", choices=["f16", "bf16", "q8_0", "f32"], default="f16",
                         help="GGUF weight type (default: f16)")
    command.add_argument("--out", help="output directory (default: RUN_DIR/export, or ./export-NAME for a model)")
    command.add_argument("--name", help="the model's name in the GGUF metadata and the Modelfile")
    command.set_defaults(handler=_export, fresh=False)


def _serve(args: argparse.Namespace) -> None:
    from finetunekit.backends.local.tuned import resolve_target
    from finetunekit.serve.server import serve

    target = resolve_target(args.target, adapter=args.adapter, cache_dir=args.cache_dir)
    serve(target, host=args.host, port=args.port, model_id=args.model_name, api_key_env=args.api_key_env,
          chat_options={"device": args.device, "dtype": args.dtype}, max_batch=args.max_batch,
          max_wait_ms=args.max_wait_ms, max_request_bytes=args.max_request_bytes, default_max_tokens=args.max_tokens)


def _export(args: argparse.Namespace) -> None:
    from finetunekit.backends.local.tuned import resolve_target
    from finetunekit.export import export

    target = resolve_target(args.target, adapter=args.adapter, cache_dir=args.cache_dir)
    result = export(target, args.export_format, out=args.out, outtype=args.outtype, name=args.name,
                    run_dir=args.target)
    for line in result.summary():
        print(line)


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
