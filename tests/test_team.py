"""A team's set-up, on real servers on 127.0.0.1: the pipeline tracks to an MLflow server on PostgreSQL with proxied
artifacts, the realtime CLI pulls the registered model from it, and DVC pushes to and pulls from a remote."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest
import yaml
from matplotlib import cbook
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

from conftest import ROOT, copy_project, report, run
from emotion.config import TrackingConfig
from emotion.data.labels import CLASS_NAMES
from emotion.errors import TrackingUnavailable
from emotion.tracking import runs
from services import Process, free_port, healthy, require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.services]

EPOCHS = 2
SMALL_MODEL = ("model.filters=[8,16]", "model.block_dropout=[0.1,0.1]", "model.dense_units=16")


@pytest.fixture(scope="module")
def project(tmp_path_factory, kaggle_folder, mlflow_server) -> Path:
    """A copy of the project that has run the pipeline on the synthetic data, tracking to the team's server."""
    root = copy_project(tmp_path_factory.mktemp("team"))
    settings = [f"data.source={kaggle_folder}", f"train.epochs={EPOCHS}", "train.batch_size=8", *SMALL_MODEL]
    run(["dvc", "exp", "run", "-n", "team", *(arg for s in settings for arg in ("-S", s))], root,
        tracking_uri=mlflow_server.uri)
    return root


def logged_weights(server, run) -> list[Path]:
    """The weights files of the run's MLflow Model in the server's artifact folder."""
    model_id = run.outputs.model_outputs[-1].model_id
    return [path for path in server.artifacts.rglob("model.weights.h5") if model_id in path.parts]


def test_runs_metrics_and_the_registered_model_are_on_the_server(project, mlflow_server):
    client = MlflowClient(mlflow_server.uri)
    run_id = json.loads((project / "artifacts/train_run.json").read_text())["run_id"]
    logged = client.get_run(run_id)
    epochs = {name: len(client.get_metric_history(run_id, name)) for name in ("loss", "val_accuracy")}
    version = client.get_model_version_by_alias("fer-emotion", "candidate")
    weights = logged_weights(mlflow_server, logged)
    report(f"server {mlflow_server.uri}: run {run_id} {logged.info.status}, epochs logged {epochs} of {EPOCHS}, "
          f"test_accuracy {logged.data.metrics.get('test_accuracy')}, fer-emotion@candidate v{version.version}, "
          f"weights in the artifact folder: {len(weights)}")
    assert logged.info.status == "FINISHED" and logged.info.run_name == "team"
    assert epochs == {"loss": EPOCHS, "val_accuracy": EPOCHS}
    test_report = json.loads((project / "reports/test.json").read_text())
    assert logged.data.metrics["test_accuracy"] == pytest.approx(test_report["accuracy"], abs=1e-4)
    assert version.run_id == run_id
    assert logged.info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied: the client never writes the folder
    assert len(weights) == 1  # ... the server did, in its --artifacts-destination
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()


def test_the_realtime_cli_labels_a_photo_with_the_servers_registered_model(project, mlflow_server, tmp_path):
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    done = subprocess.run([sys.executable, "-m", "realtime.webcam", "--image", photo, "--json", "--headless",
                           "--model-uri", "models:/fer-emotion@candidate"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads((project / "artifacts/train_run.json").read_text())["run_id"]
    assert f"downloaded the model of run {run_id}" in done.stderr
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(record["faces"]) == 1 and record["faces"][0]["label"] in CLASS_NAMES
    served = logged_weights(mlflow_server, MlflowClient(mlflow_server.uri).get_run(run_id))[0].read_bytes()
    assert (tmp_path / ".cache/models" / run_id / "model.weights.h5").read_bytes() == served


def cached_outputs(project: Path) -> list[Path]:
    """The outputs DVC keeps in its cache (and so pushes): every out or plot of dvc.yaml without cache: false."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"].values()
    entries = [entry for stage in stages for entry in stage.get("outs", []) + stage.get("plots", [])]
    return [project / entry for entry in entries if isinstance(entry, str)]


def test_a_dvc_remote_restores_the_cache_and_outputs_and_repro_has_nothing_to_do(project, mlflow_server, tmp_path):
    outputs = cached_outputs(project)
    before = {path: path.read_bytes() for out in outputs for path in ([out] if out.is_file() else out.rglob("*"))}
    run(["dvc", "remote", "add", "-d", "team", str(tmp_path / "remote")], project)
    pushed = run(["dvc", "push"], project, tracking_uri=mlflow_server.uri)
    for path in [project / ".dvc/cache", *outputs]:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    run(["dvc", "pull"], project)
    status = run(["dvc", "status"], project)
    repro = run(["dvc", "repro"], project, tracking_uri=mlflow_server.uri)
    report(f"dvc push: {pushed.strip().splitlines()[-1]}; {len(before)} files wiped and pulled back; "
          f"dvc status: {status.strip()}")
    assert {path: path.read_bytes() for path in before} == before
    assert "Data and pipelines are up to date." in status
    assert "Running stage" not in repro


@contextlib.contextmanager
def credentials(user: str | None, password: str | None):
    """MLflow's client credentials (MLFLOW_TRACKING_USERNAME / PASSWORD) set, or unset with None, for the block."""
    saved = {key: os.environ.pop(key, None) for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update({key: value for key, value in zip(saved, (user, password)) if value is not None})
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


@pytest.mark.parametrize("stop", ["ctrl-c", "kill"])
def test_the_team_server_script_serves_mlflow_on_postgresql_and_stopping_it_stops_both(tmp_path, stop, monkeypatch):
    require_postgres()
    folder = Path(tempfile.mkdtemp(prefix="fer-team-"))  # not under tmp_path: PostgreSQL's user must reach it
    port = free_port()
    script = Process("scripts/team_server.sh", tmp_path / "script.log")
    try:
        (folder / "admin-password").write_text("s3cret-for-the-test\n")
        script.launch(["bash", str(ROOT / "scripts/team_server.sh"), str(folder)],
                      env=os.environ | {"MLFLOW_PORT": str(port), "PG_PORT": str(free_port()),
                                        "ADMIN_PASSWORD_FILE": str(folder / "admin-password")})
        uri = f"http://127.0.0.1:{port}"
        script.wait_until(lambda: healthy(uri))
        with credentials("admin", "s3cret-for-the-test"):
            client = MlflowClient(uri)
            run_id = client.create_run(client.create_experiment("team")).info.run_id
            client.log_metric(run_id, "loss", 0.5)
            auth = AuthServiceClient(uri)
            auth.create_user("reader", "reader-password")  # default permission: READ
            auth.create_user("writer", "writer-password")  # ... and EDIT on the experiment, as the README shows
            experiment = client.get_run(run_id).info.experiment_id
            auth.grant_user_permission("writer", "experiment", experiment, "EDIT")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # as a user points the pipeline at the server
        with credentials(None, None), pytest.raises(TrackingUnavailable) as refused:
            runs.setup(TrackingConfig())
        assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in str(refused.value)
        assert "\n" not in str(refused.value)
        with credentials("reader", "reader-password"):
            reader = MlflowClient(uri)
            assert reader.get_run(run_id).data.metrics == {"loss": 0.5}
            with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
                reader.create_run(experiment)
        with credentials("writer", "writer-password"):
            writer = MlflowClient(uri)
            writer.log_metric(writer.create_run(experiment).info.run_id, "loss", 0.25)
        if stop == "ctrl-c":  # a terminal's Ctrl-C: SIGINT to the whole process group
            script.stop(signal.SIGINT)
        else:  # kill PID, as a service manager stops it: SIGTERM to the script alone
            script.process.terminate()
            script.process.wait(timeout=60)
        printed = script.log_file.read_text()
        assert f"export MLFLOW_TRACKING_URI={uri} MLFLOW_TRACKING_USERNAME=" in printed, printed[-2000:]
        assert "s3cret" not in printed
        assert not healthy(uri), f"the MLflow server still answers after {stop}"
        assert not (folder / "postgres/postmaster.pid").exists(), f"PostgreSQL still runs after {stop}"
        assert (folder / "postgres/PG_VERSION").exists()  # the data stays for the next start
    finally:
        mlflow.set_tracking_uri(None)  # it also set MLFLOW_TRACKING_URI for this process: no later test inherits it
        script.stop(signal.SIGKILL)
        if (folder / "postgres/postmaster.pid").exists():  # the assertion above failed: stop it here
            os.kill(int((folder / "postgres/postmaster.pid").read_text().split()[0]), signal.SIGINT)
        shutil.rmtree(folder, ignore_errors=True)
