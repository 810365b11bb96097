"""A real third-party plugin distribution, built and installed with pip, is found by name.

Nothing is monkeypatched: the packages are written to a temporary folder, installed with
``pip install --target`` (setuptools from the environment, no network), and used from a
fresh interpreter whose ``sys.path`` holds the install folder, exactly as after a user's
``pip install``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"

[project.entry-points.finetunekit]
{entry_point} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
"""

PLUGIN = '''\
import finetunekit


@finetunekit.hookimpl
def register_prompt_templates(register):
    register(finetunekit.PromptTemplateSet(
        name="catalog-questions",
        templates=["What do you know about {{title}}?", "Describe {{title}}."],
        description="{description}",
    ))
'''


def _install(tmp: Path, dist: str, entry_point: str, module: str) -> Path:
    """Write, build and install one plugin distribution into its own target folder."""
    project = tmp / dist
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, entry_point=entry_point, module=module))
    (project / f"{module}.py").write_text(PLUGIN.format(description=f"from {dist}"))
    target = tmp / f"site-{dist}"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--target", str(target), str(project)],
        capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0 and "No module named" in result.stderr and "setuptools" in result.stderr:
        pytest.skip("setuptools is not installed (pip install 'finetunekit[test]')")
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(target.glob(f"{dist.replace('-', '_')}-0.1.0.dist-info/entry_points.txt"))
    return target


def _run(script: str, *paths: Path) -> dict:
    """Run ``script`` in a fresh interpreter with ``paths`` (and our src) on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*(str(p) for p in paths), str(SRC)])}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                            text=True, timeout=120, env=env, cwd=paths[0])
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugins")
    return {
        "catalog": _install(tmp, "catalog-plugin", "catalog", "catalog_plugin"),
        "duplicate": _install(tmp, "catalog-copy", "catalog_copy", "catalog_copy_plugin"),
    }


def test_installed_plugin_is_usable_by_name_with_no_other_step(installed):
    out = _run(
        """
        import json
        from finetunekit import PromptGenerator, build_examples
        from finetunekit.plugins import create_plugin_manager
        from finetunekit.registry import registry_for

        generator = PromptGenerator(templates="catalog-questions", seed=3)
        rows = [{"_row_id": "p1", "title": "Blue Kettle", "content": "Boils water."}]
        built = build_examples(rows, "catalog-questions", "{title}: {content}")
        bare = create_plugin_manager(load_entrypoints=False)
        print(json.dumps({
            "questions": generator.generate(rows),
            "templates": list(generator.template_set.templates),
            "built": built.user_questions(),
            "plugin": registry_for("register_prompt_templates").plugin_of("catalog-questions"),
            "without_entry_points": registry_for("register_prompt_templates", bare).names(),
        }))
        """,
        installed["catalog"],
    )
    assert out["templates"] == ["What do you know about {title}?", "Describe {title}."]
    assert out["questions"][0] in ("What do you know about Blue Kettle?", "Describe Blue Kettle.")
    assert out["built"][0] in ("What do you know about Blue Kettle?", "Describe Blue Kettle.")
    assert out["plugin"] == "catalog"  # the entry point's name
    assert "catalog-questions" not in out["without_entry_points"]
    assert "amazon-product" in out["without_entry_points"]


def test_two_installed_plugins_with_one_name_fail_naming_both(installed):
    out = _run(
        """
        import json
        from finetunekit import DuplicateComponentError, PromptGenerator
        try:
            PromptGenerator(templates="catalog-questions")
        except DuplicateComponentError as exc:
            print(json.dumps({"plugins": sorted([exc.first_plugin, exc.second_plugin]), "message": str(exc)}))
        else:
            print(json.dumps({"plugins": None}))
        """,
        installed["catalog"],
        installed["duplicate"],
    )
    assert out["plugins"] == ["catalog", "catalog_copy"]
    assert "'catalog'" in out["message"] and "'catalog_copy'" in out["message"]


def test_without_the_install_the_name_is_unknown(installed):
    out = _run(
        """
        import json
        from finetunekit import PromptGenerator, UnknownComponentError
        try:
            PromptGenerator(templates="catalog-questions")
            print(json.dumps({"found": True}))
        except UnknownComponentError as exc:
            print(json.dumps({"found": False, "available": exc.available}))
        """,
        SRC,
    )
    assert out["found"] is False and "catalog-questions" not in out["available"]
    assert {"amazon-product", "amazon-product-paraphrased"} <= set(out["available"])
