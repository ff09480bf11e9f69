#!/usr/bin/env bash
# Train a recipe on an accelerator machine that has JAX with CUDA but no TensorFlow, Keras, MLflow or network, into
# an export folder; run the same command again to resume from the checkpoint. Prepare here first:
# bash scripts/gpu_prepare.sh. Then, there, in the project folder:
#   bash scripts/train_on_gpu.sh [EXPORT_DIR (default runs/strong)] [Hydra overrides (default experiment=strong)]
# A call stops itself after GPU_MINUTES (default 9), its finished epochs checkpointed, so each fits a 10-minute
# command. Back here: python -m stages.import_run EXPORT_DIR --run-file artifacts/train_run.json, then
# python -m stages.evaluate (scores the test split and registers the model).
set -euo pipefail
cd "$(dirname "$0")/.."
EXPORT_DIR="${1:-runs/strong}"
shift || true
[ "$#" -gt 0 ] || set -- experiment=strong
SITE="${GPU_SITE:-/tmp/fer-site}"
PYTHON="${PYTHON:-python3}"
if [ -z "${GPU_SKIP_INSTALL:-}" ] && [ ! -d "$SITE/keras" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND="${KERAS_BACKEND:-jax}" PYTHONUNBUFFERED=1
HYDRA=(hydra.run.dir=. hydra.output_subdir=null hydra/job_logging=stdout)  # no outputs/ folders or log files
INDEX="${GPU_INDEX:-.gpu/index}"
if [ ! -f "$INDEX/cache.npz" ]; then
  DATA="${GPU_DATA:-/tmp/fer2013-train}"
  mkdir -p "$DATA" && tar -xJf "${GPU_ARCHIVE:-.gpu/fer2013-train.tar.xz}" -C "$DATA"
  "$PYTHON" -m stages.index "data.source=$DATA" "data.splits=[train]" \
    "data.index_dir=$INDEX" "data.report_file=$INDEX/metrics.json" "data.plots_dir=$INDEX/plots" "${HYDRA[@]}"
fi
timeout --signal=INT "${GPU_MINUTES:-9}m" "$PYTHON" -m stages.train_offline "+export_dir=$EXPORT_DIR" \
  "data.index_dir=$INDEX" "train.checkpoint_dir=${GPU_CHECKPOINTS:-.gpu/checkpoints}" "${HYDRA[@]}" "$@"
