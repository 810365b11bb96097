"""The run manifest: config, seeds, data fingerprint, package versions, stage timings.

Written atomically after every stage, so an interrupted run shows what finished. Values
under secret-looking keys, and secret values anywhere (an error message quoting a key), are
redacted, so API keys never reach the run directory. A manifest that is not one of ours
(another program's ``manifest.json``, a corrupt file) is refused with a :class:`ConfigError`.
"""

from __future__ import annotations

import json
import platform
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from finetunekit import distributed
from finetunekit.atomic import write_json
from finetunekit.errors import ConfigError
from finetunekit.redaction import redact

MANIFEST_NAME = "manifest.json"
PACKAGES = ("finetunekit", "openai", "pandas", "pydantic", "pluggy", "torch", "transformers", "peft", "accelerate", "gguf")
def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run depends on (``None`` when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


_CHOOSE = "choose another run_dir, or move that file away"


class RunManifest:
    """The manifest of one run directory."""

    def __init__(self, run_dir: str | Path, data: dict[str, Any]) -> None:
        self.run_dir = Path(run_dir)
        self.data = data

    @property
    def path(self) -> Path:
        """Where the manifest lives."""
        return self.run_dir / MANIFEST_NAME

    @classmethod
    def load(cls, run_dir: str | Path) -> RunManifest | None:
        """The manifest in ``run_dir``, or ``None`` when there is none."""
        path = Path(run_dir) / MANIFEST_NAME
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"{path}: not a readable finetunekit manifest ({exc}); {_CHOOSE}") from None
        if not (isinstance(data, dict) and isinstance(data.get("stages"), dict)
                and isinstance(data.get("fingerprints", {}), dict)
                and all(isinstance(v, dict) for v in data["stages"].values())):
            raise ConfigError(f"{path}: not a finetunekit manifest (no 'stages' record); {_CHOOSE}")
        return cls(run_dir, data)

    @classmethod
    def create(cls, run_dir: str | Path, *, config: dict[str, Any], fingerprints: dict[str, str], seed: int) -> RunManifest:
        """A new manifest for a run about to start (``fingerprints``: one per stage)."""
        manifest = cls(
            run_dir,
            {
                "config": redact(config),
                "fingerprints": fingerprints,
                "seed": seed,
                "packages": package_versions(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "stages": {},
            },
        )
        manifest.save()
        return manifest

    def save(self) -> None:
        """Write the manifest atomically (only rank 0 writes when several processes run)."""
        if distributed.is_main_process():
            write_json(self.path, redact(self.data))

    def completed(self, stage: str) -> bool:
        """Whether ``stage`` finished in this run directory."""
        return self.data["stages"].get(stage, {}).get("status") == "completed"

    def forget(self, stage: str) -> None:
        """Drop what was recorded for ``stage``, so that it runs again."""
        if self.data["stages"].pop(stage, None) is not None:
            self.save()

    def stage_info(self, stage: str) -> dict[str, Any]:
        """What was recorded for ``stage`` (empty when nothing was)."""
        return self.data["stages"].get(stage, {})

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a stage; record it ``running``, then ``completed`` or ``failed``, with its facts."""
        record: dict[str, Any] = {"status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.data["stages"][name] = record
        self.save()
        start = time.perf_counter()
        try:
            yield record
        except BaseException as exc:
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            record["status"] = "completed"
        finally:
            record["seconds"] = round(time.perf_counter() - start, 2)
            self.save()
