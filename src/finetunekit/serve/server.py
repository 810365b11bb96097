"""Starting the server: load the model, bind the socket, run uvicorn.

The socket is bound before uvicorn starts, so ``--port 0`` picks a free port and the line
``finetunekit: serving MODEL at http://HOST:PORT/v1`` (printed once the model is loaded and
the port is open) tells the caller where.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from typing import Any

from finetunekit.backends.local.tuned import LocalTarget
from finetunekit.errors import ConfigError, MissingDependencyError

SERVE_EXTRA_INSTALL = "pip install 'finetunekit[serve]'"


def require_serve_dependencies() -> None:
    """Raise :class:`MissingDependencyError` unless FastAPI and uvicorn are importable."""
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(f"the server's dependencies ({', '.join(missing)})", SERVE_EXTRA_INSTALL)


def api_key_from(env_var: str | None) -> str | None:
    """The API key held by the environment variable ``env_var`` (``None``: no key required)."""
    if env_var is None:
        return None
    key = os.environ.get(env_var, "")
    if not key:
        raise ConfigError(f"--api-key-env {env_var}: the environment variable {env_var} is unset or empty")
    return key


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


def serve(target: LocalTarget, *, host: str = "127.0.0.1", port: int = 8000, model_id: str | None = None,
          api_key_env: str | None = None, chat_options: dict[str, Any] | None = None, log_level: str = "warning",
          **settings: Any) -> None:
    """Serve ``target`` until interrupted; ``settings`` are :class:`~finetunekit.serve.app.ServeSettings`
    fields, ``chat_options`` extra options of the ``local`` chat model (``device``, ``dtype``)."""
    require_serve_dependencies()
    import uvicorn

    from finetunekit.registry import get_chat_model
    from finetunekit.serve.app import ServeSettings, create_app

    key = api_key_from(api_key_env)
    config = ServeSettings(model_id=model_id or target.label, api_key=key, **settings)
    chat_model = get_chat_model("local", **{**target.chat_options(), **(chat_options or {}),
                                            "batch_size": config.max_batch, "progress": False})
    app = create_app(chat_model, config)
    sock = bind(host, port)
    where = sock.getsockname()
    shown = f"[{where[0]}]" if sock.family == socket.AF_INET6 else where[0]
    print(f"finetunekit: serving {config.model_id} at http://{shown}:{where[1]}/v1", flush=True)
    print(f"finetunekit: health at http://{shown}:{where[1]}/health; stop with Ctrl-C", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False))
    server.run(sockets=[sock])
