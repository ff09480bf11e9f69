#!/usr/bin/env bash
# A team's MLflow tracking server without Docker: PostgreSQL (Debian's `postgresql` package, or initdb and postgres on
# PATH) as the backend store and `mlflow server` with proxied artifacts and MLflow's login (its basic-auth app: users,
# passwords and per-experiment permissions, kept in a second database), all data kept in FOLDER (default
# team-server/); run it again to start the same pair on the same data. Ctrl-C (or kill, SIGTERM) stops both.
#   MLFLOW_AUTH_ADMIN_PASSWORD=... bash scripts/team_server.sh [FOLDER] [mlflow server options, e.g. --allowed-hosts]
#   env: MLFLOW_AUTH_ADMIN_PASSWORD, or ADMIN_PASSWORD_FILE (a file holding it): the password of the user `admin`,
#   needed on the first start (never printed; MLflow has no default); clients set MLFLOW_TRACKING_USERNAME and
#   MLFLOW_TRACKING_PASSWORD. HOST (127.0.0.1; 0.0.0.0 serves the team), MLFLOW_PORT (5000), PG_PORT (5433;
#   PostgreSQL listens on 127.0.0.1 only, with trust authentication: only this machine's users reach it)
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER="$(realpath -m "${1:-team-server}")"
shift $(( $# > 0 ? 1 : 0 ))
HOST="${HOST:-127.0.0.1}" MLFLOW_PORT="${MLFLOW_PORT:-5000}" PG_PORT="${PG_PORT:-5433}"
if [ -n "${ADMIN_PASSWORD_FILE:-}" ]; then
  MLFLOW_AUTH_ADMIN_PASSWORD="$(cat "$ADMIN_PASSWORD_FILE")"
fi
if [ -z "${MLFLOW_AUTH_ADMIN_PASSWORD:-}" ] && [ ! -f "$FOLDER/basic_auth.ini" ]; then
  echo "error: set MLFLOW_AUTH_ADMIN_PASSWORD (or ADMIN_PASSWORD_FILE, a file holding it): the password of the" \
       "server's admin user, needed on its first start" >&2
  exit 1
fi
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
for database in mlflow mlflow_auth; do  # runs, models and metrics; users and permissions
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" \
    | grep -q 1 || "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$database"
done
if [ ! -s "$FOLDER/flask-secret-key" ]; then  # the login forms' CSRF key: made once, kept for the next starts
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$FOLDER/flask-secret-key")
fi
cat > "$FOLDER/basic_auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/mlflow_auth
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
echo "PostgreSQL on 127.0.0.1:$PG_PORT, artifacts in $FOLDER/artifacts; in the shell that runs the pipeline:"
echo "export MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<password>"
# MLflow's job runner (GenAI scorers; five more processes) serves nothing of this project: off unless asked for
MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}" \
MLFLOW_AUTH_CONFIG_PATH="$FOLDER/basic_auth.ini" MLFLOW_AUTH_ADMIN_PASSWORD="${MLFLOW_AUTH_ADMIN_PASSWORD:-}" \
MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$FOLDER/flask-secret-key")" \
  .venv/bin/mlflow server --app-name basic-auth --backend-store-uri "postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/mlflow" \
    --artifacts-destination "$FOLDER/artifacts" --host "$HOST" --port "$MLFLOW_PORT" "$@" &
server=$!  # in the background, so that a SIGTERM to this script (not only Ctrl-C to the terminal) stops it too
trap 'kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null; "${as[@]}" "$bin/pg_ctl" -D "$FOLDER/postgres" -m fast -w stop >/dev/null' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
wait "$server"
