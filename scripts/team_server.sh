#!/usr/bin/env bash
# A team's MLflow tracking server without Docker: PostgreSQL (Debian's `postgresql` package, or initdb and postgres on
# PATH) as the backend store and `mlflow server` with proxied artifacts, all data kept in FOLDER (default
# team-server/); run it again to start the same pair on the same data. Ctrl-C (or kill, SIGTERM) stops both.
#   bash scripts/team_server.sh [FOLDER] [mlflow server options, e.g. --allowed-hosts ...]
#   env: HOST (127.0.0.1; 0.0.0.0 serves the team), MLFLOW_PORT (5000), PG_PORT (5433; PostgreSQL listens on
#   127.0.0.1 only, with trust authentication: only this machine's users reach it)
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER="$(realpath -m "${1:-team-server}")"
shift $(( $# > 0 ? 1 : 0 ))
HOST="${HOST:-127.0.0.1}" MLFLOW_PORT="${MLFLOW_PORT:-5000}" PG_PORT="${PG_PORT:-5433}"
[ -x .venv/bin/mlflow ] || bash scripts/setup.sh
initdb="$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
[ -n "$initdb" ] || { echo "error: PostgreSQL not found: apt-get install postgresql (or put initdb on PATH)" >&2; exit 1; }
bin="$(dirname "$(realpath "$initdb")")"  # Debian links initdb onto PATH, not psql
as=()
mkdir -p "$FOLDER/artifacts"
if [ "$(id -u)" = 0 ]; then  # PostgreSQL refuses to run as root: its own user runs it
  as=(runuser -u postgres --)
  chown postgres "$FOLDER"
fi
[ -d "$FOLDER/postgres" ] || "${as[@]}" "$bin/initdb" -D "$FOLDER/postgres" -U postgres -A trust -E UTF8 --no-instructions >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$FOLDER/postgres" -l "$FOLDER/postgres.log" -w start \
  -o "-h 127.0.0.1 -p $PG_PORT -k $FOLDER" >/dev/null
trap '"${as[@]}" "$bin/pg_ctl" -D "$FOLDER/postgres" -m fast -w stop >/dev/null' EXIT
"$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'mlflow'" | grep -q 1 \
  || "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres mlflow
echo "PostgreSQL on 127.0.0.1:$PG_PORT, artifacts in $FOLDER/artifacts; in the shell that runs the pipeline:"
echo "export MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT"
# MLflow's job runner (GenAI scorers; five more processes) serves nothing of this project: off unless asked for
MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}" \
  .venv/bin/mlflow server --backend-store-uri "postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/mlflow" \
    --artifacts-destination "$FOLDER/artifacts" --host "$HOST" --port "$MLFLOW_PORT" "$@" &
server=$!  # in the background, so that a SIGTERM to this script (not only Ctrl-C to the terminal) stops it too
trap 'kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null; "${as[@]}" "$bin/pg_ctl" -D "$FOLDER/postgres" -m fast -w stop >/dev/null' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
wait "$server"
