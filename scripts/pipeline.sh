#!/usr/bin/env bash
# Set up .venv and run the DVC pipeline (index -> train -> evaluate) on the configuration in conf/: params.yaml is
# composed from it first, whatever an earlier `dvc exp run -S` left there. Extra arguments go to `dvc repro`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
python -m stages.params
dvc repro "$@"
