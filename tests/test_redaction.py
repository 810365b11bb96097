"""Secrets stay out of the manifest and other run files."""

from __future__ import annotations

import pytest

from finetunekit.manifest import RunManifest
from finetunekit.redaction import REDACTED, is_secret_key, redact


@pytest.mark.parametrize(
    "name",
    ["api_key", "OPENAI_API_KEY", "hf_token", "token", "auth_token", "access_token", "secret_key",
     "aws_secret_access_key", "private_key", "password", "passwd", "credentials", "Authorization", "bearer"],
)
def test_secret_names(name):
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["api_key_env", "max_tokens", "max_new_tokens", "tokens", "model", "seed", "keep"])
def test_ordinary_names(name):
    assert not is_secret_key(name)


def test_redact_reaches_nested_mappings_and_lists():
    value = {"a": [{"hf_token": "x"}], "options": {"api_key": "y", "epochs": 3}}
    assert redact(value) == {"a": [{"hf_token": REDACTED}], "options": {"api_key": REDACTED, "epochs": 3}}


def test_the_manifest_never_holds_a_secret_value(tmp_path):
    config = {"trainer": {"name": "x", "options": {"hf_token": "hf_SECRET", "epochs": 2}}}
    manifest = RunManifest.create(tmp_path, config=config, fingerprints={}, seed=0)
    manifest.data["config"]["extra"] = {"password": "p@SECRET"}
    manifest.save()
    text = (tmp_path / "manifest.json").read_text()
    assert "SECRET" not in text and '"epochs": 2' in text
