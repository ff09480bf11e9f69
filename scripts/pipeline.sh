#!/usr/bin/env bash
# Set up .venv and run the DVC pipeline (index -> train -> evaluate). Extra arguments go to `dvc repro`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fer-pipeline "$@"   # dvc repro, with this .venv's Python for the stages
