#!/usr/bin/env bash
# Round-two pilots, one after another, each a DVC experiment (`dvc exp run -n NAME -S ...`, tracked in MLflow) in a
# worktree of this repository pinned to one commit, so that later changes to the checkout do not disturb them.
#   FER2013_SOURCE=~/fer2013.zip bash scripts/pilots.sh [COMMIT]      (COMMIT: HEAD when the worktree is first made)
# Run it again to go on: finished pilots are skipped, a stopped one resumes from its last epoch's checkpoint (each
# has its own checkpoint folder). Runs at low priority; progress in .pilots/logs/NAME.log, results in
# `dvc exp show` and the worktree's MLflow store (.pilots/worktree/mlflow.db). Selection: validation split only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
: "${FER2013_SOURCE:?set FER2013_SOURCE to the FER2013 zip, folder or fer2013.csv}"
worktree=.pilots/worktree
[ -d "$worktree" ] || git worktree add --detach "$worktree" "${1:-HEAD}"
mkdir -p .pilots/logs .pilots/done
source "$root/.venv/bin/activate"
cd "$worktree"
echo "pilots in $worktree at $(git rev-parse --short HEAD)"

pilot() {  # NAME OVERRIDE...: the efficient recipe, 30 epochs, with the overrides
  local name=$1
  shift
  [ -f "$root/.pilots/done/$name" ] && return 0
  echo "$(date -u +%FT%TZ) $name: $*"
  nice -n 10 dvc exp run -n "$name" -S experiment=efficient -S "data.source=$FER2013_SOURCE" -S train.epochs=30 \
    -S "train.checkpoint_dir=checkpoints/$name" "$@" > "$root/.pilots/logs/$name.log" 2>&1
  touch "$root/.pilots/done/$name"
}

crops=(-S model.crop_px=44 -S model.crop_jitter_px=2)
pilot r2-base
pilot r2-crop44 "${crops[@]}"
# EMA only shadows the weights (the raw ones train as without it), so an EMA run scores both: SGD's answers AdamW
# against r2-crop44, and EMA against raw weights
pilot r2-crop44-ema-sgd "${crops[@]}" -S train.ema=true -S train.optimizer=sgd -S train.lr=0.02 \
  -S train.weight_decay=0.0005
pilot r2-crop44-ema "${crops[@]}" -S train.ema=true
