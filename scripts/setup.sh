#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the project with its pinned dependencies. Safe to re-run: fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), sys.version' \
  || { echo "error: Python 3.11 or 3.12 is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q uv==0.13.9
if [ "$(uname -sm)" = "Linux x86_64" ]; then
  # requirements.lock pins every transitive dependency for Linux x86_64 (uv pip compile, see README)
  .venv/bin/uv pip install -q --python .venv/bin/python -r requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
else
  .venv/bin/uv pip install -q --python .venv/bin/python -e '.[dev]'
fi
