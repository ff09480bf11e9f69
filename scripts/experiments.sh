#!/usr/bin/env bash
# Long trainings one after another, each a DVC experiment (`dvc exp run -n NAME -S ...`, tracked in MLflow), in a
# worktree of this repository pinned to one commit, so that later changes to the checkout do not disturb them.
#   FER2013_SOURCE=~/fer2013.zip bash scripts/experiments.sh PLAN [COMMIT]
# PLAN names scripts/plans/PLAN.sh: one `experiment NAME -S key=value ...` line per training (data.source and a
# checkpoint folder of its own are added), and `step NAME COMMAND...` for other work in the worktree (`run_of NAME`
# gives an experiment's MLflow run id). COMMIT: HEAD when the plan's worktree is first made.
# Run it again to go on: finished experiments and steps are skipped, a stopped training resumes from its last
# epoch's checkpoint. Runs at low priority. State in .PLAN/: worktree/ (git- and DVC-ignored; results in its
# `dvc exp show` and its MLflow store worktree/mlflow.db), logs/NAME.log, done/NAME, runs/NAME.json (the run of
# each experiment). Selection: validation split only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
plan=${1:?name a plan in scripts/plans, e.g. pilots}
[ -f "scripts/plans/$plan.sh" ] || { echo "error: no scripts/plans/$plan.sh" >&2; exit 1; }
: "${FER2013_SOURCE:?set FER2013_SOURCE to the FER2013 zip, folder or fer2013.csv}"
state=$root/.$plan
worktree=$state/worktree
[ -d "$worktree" ] || git worktree add --detach "$worktree" "${2:-HEAD}"
mkdir -p "$state/logs" "$state/done" "$state/runs"
source "$root/.venv/bin/activate"
renice -n 10 -p $$ > /dev/null  # low priority for this script and all it starts
cd "$worktree"
echo "$plan in $worktree at $(git rev-parse --short HEAD)"

step() {  # NAME COMMAND...: COMMAND once, its output in logs/NAME.log; skipped when NAME is done
  local name=$1
  shift
  [ -f "$state/done/$name" ] && return 0
  echo "$(date -u +%FT%TZ) $name: $*"
  "$@" > "$state/logs/$name.log" 2>&1
  touch "$state/done/$name"
}

train() {  # NAME OVERRIDE...: the DVC experiment, its MLflow run id kept in runs/NAME.json
  local name=$1
  shift
  dvc exp run -n "$name" -S "data.source=$FER2013_SOURCE" -S "train.checkpoint_dir=checkpoints/$name" "$@"
  cp artifacts/train_run.json "$state/runs/$name.json"
}

experiment() {  # NAME OVERRIDE...
  step "$1" train "$@"
}

run_of() {  # NAME: the MLflow run id of a finished experiment
  python -c "import json, sys; print(json.load(open(sys.argv[1]))['run_id'])" "$state/runs/$1.json"
}

source "$root/scripts/plans/$plan.sh"
