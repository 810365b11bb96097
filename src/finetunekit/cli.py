"""The ``finetunekit`` command: run, prepare, train, evaluate, serve, export, templates, plugins.

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
    _add_serve(commands)
    _add_export(commands)
    add("templates", _templates, "list prompt template sets and the plugin that registered each", config=False)
    add("plugins", _plugins, "list installed plugins and the hooks they implement", config=False)
    return parser


def _add_target(command: argparse.ArgumentParser) -> None:
    command.add_argument("target", metavar="RUN_DIR", help="a run directory, a PEFT adapter directory, or a model "
                         "name/directory (then --adapter adds an adapter)")
    command.add_argument("--adapter", help="a PEFT adapter directory to apply to the model named by RUN_DIR")
    command.add_argument("--cache-dir", help="where converted models are cached")


def _add_serve(commands: Any) -> None:
    help = "serve a fine-tuned local model over an OpenAI-compatible HTTP API"
    command = commands.add_parser("serve", help=help, description=help)
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


def _add_export(commands: Any) -> None:
    help = "export a fine-tuned local model: merged safetensors, or GGUF (+ Ollama Modelfile)"
    command = commands.add_parser("export", help=help, description=help)
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
