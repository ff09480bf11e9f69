#!/usr/bin/env bash
# Set up .venv and run the DVC pipeline (index -> train -> evaluate) on the configuration in conf/: params.yaml is
# composed from it first, whatever an earlier `dvc exp run -S` left there. Extra arguments go to `dvc repro`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fer-pipeline "$@"   # params.yaml from conf/, then dvc repro
