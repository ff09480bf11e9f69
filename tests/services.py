"""Real servers on 127.0.0.1 for tests marked `services`: PostgreSQL (Debian's `postgresql` binaries, or initdb and
postgres on PATH) and an MLflow tracking server on it with proxied artifacts in a folder. Each one can be stopped and
started again by a test (same port, same data), and is stopped at the end of the session.

Fixtures `postgres` and `mlflow_server` (session-scoped; conftest imports them); a test that stops one starts it again
with `.start()` (in a `finally`), so the next test finds it running.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

START_TIMEOUT_S = 120


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """The folder of PostgreSQL's initdb and postgres: on PATH, else Debian's newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent  # the real folder, where postgres is (a link's folder may lack it)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def require_postgres() -> Path:
    """postgres_bin_dir(), or skip the test saying what is missing."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("services: PostgreSQL's initdb and postgres not found (apt-get install postgresql, as .ci/run "
                    "does, or put them on PATH)")
    return bin_dir


def server_user() -> str | None:
    """Who runs PostgreSQL: root may not, so Debian's `postgres` user (or `nobody`); None means this user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    pytest.skip("services: running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class Process:
    """A server process in its own session, its output in a log file; stop() ends it and its children."""

    def __init__(self, name: str, log_file: Path):
        self.name, self.log_file = name, log_file
        self.process: subprocess.Popen | None = None

    def launch(self, command: list[str], user: str | None = None, env: dict[str, str] | None = None) -> None:
        with open(self.log_file, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, user=user, cwd=self.log_file.parent, env=env)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready) -> None:
        """Return once ready() is true; raise with the log's tail if the process exits or time runs out."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.running:
            if ready():
                return
            time.sleep(0.2)
        self.stop(signal.SIGKILL)
        tail = self.log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.name} did not start; the end of {self.log_file}:\n{tail}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send sig to the process group and wait for the process to end (SIGKILL after 60 s)."""
        if not self.running:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class PostgresServer(Process):
    """A PostgreSQL cluster in a fresh temporary folder, trust authentication, listening on 127.0.0.1 only."""

    def __init__(self):
        self.bin_dir, self.user = require_postgres(), server_user()
        # outside pytest's tmp_path: that folder is private to root, and the server may run as another user
        self.folder = Path(tempfile.mkdtemp(prefix="fer-postgres-"))
        if self.user:
            os.chown(self.folder, pwd.getpwnam(self.user).pw_uid, -1)
        super().__init__("PostgreSQL", self.folder / "server.log")
        self.port = free_port()
        self.data_dir = self.folder / "data"
        subprocess.run([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-instructions"], user=self.user, check=True, capture_output=True,
                       cwd=self.folder)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of a database on this server (MLflow's and Optuna's form)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PostgresServer":
        """Start the server (no-op when it runs) and return once it accepts connections."""
        if not self.running:
            self.launch([str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1",
                         "-p", str(self.port), "-k", str(self.folder)], self.user)
            self.wait_until(self._accepts)
        return self

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop the server; SIGINT is PostgreSQL's fast shutdown (clients cut off, data kept)."""
        super().stop(sig)

    def create_database(self, name: str) -> str:
        """Create a database (once) and return its URL."""
        import psycopg

        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self._dsn("postgres"), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False


class MlflowServer(Process):
    """`mlflow server` on 127.0.0.1 with a backend store and proxied artifacts in a folder (mlflow-artifacts:/)."""

    def __init__(self, backend_store_uri: str, folder: Path):
        super().__init__("mlflow server", Path(folder) / "mlflow-server.log")
        self.backend_store_uri, self.artifacts = backend_store_uri, Path(folder) / "artifacts"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> "MlflowServer":
        """Start the server (no-op when it runs) and return once /health answers."""
        if not self.running:
            self.launch([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend_store_uri,
                         "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1",
                         "--port", str(self.port), "--workers", "1"],
                        env=os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # as team_server.sh
            self.wait_until(lambda: healthy(self.uri))
        return self


def healthy(uri: str) -> bool:
    """Whether the MLflow server at uri answers /health."""
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres():
    """A running PostgreSQL server for the session."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """A running MLflow tracking server on the session's PostgreSQL (database `mlflow`)."""
    server = MlflowServer(postgres.create_database("mlflow"), tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server.start()
    finally:
        server.stop()
