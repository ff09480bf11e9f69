"""Real training processes killed (SIGKILL) or interrupted (Ctrl-C) in epoch 2 and started again end exactly where
the uninterrupted process ends: the same logged metrics and the same predictions. One trainer per checkpoint."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import ROOT, report, stage_command, write_kaggle_folder
from emotion.data import dataset
from emotion.data.preprocess import to_model_input
from emotion.tracking import model_files, model_io, runs
from emotion.training import trainer

pytestmark = pytest.mark.slow

EPOCHS = 3


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    """An index of 30 synthetic faces per class: epochs long enough (24 batches) to be stopped inside."""
    from conftest import compose_config

    root = tmp_path_factory.mktemp("resume")
    cfg = compose_config(f"data.source={write_kaggle_folder(root / 'fer', per_class=30)}",
                         f"data.index_dir={root / 'index'}")
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    return root / "index"


def command(stage: str, index_dir: Path, *overrides: str) -> list[str]:
    return stage_command(stage, f"data.index_dir={index_dir}", f"train.epochs={EPOCHS}", "train.batch_size=8",
                         "augment=standard", "hydra.run.dir=.", "hydra.output_subdir=null", *overrides)


def start(stage: str, workdir: Path, index_dir: Path, *overrides: str,
          tracking_uri: str | None = None) -> subprocess.Popen:
    """The stage as a process in workdir, tracking to workdir's SQLite store unless tracking_uri says otherwise."""
    env = os.environ | {"PYTHONPATH": str(ROOT),
                        "MLFLOW_TRACKING_URI": tracking_uri or f"sqlite:///{workdir}/mlflow.db"}
    return subprocess.Popen(command(stage, index_dir, *overrides), cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=600)
    return process.returncode, err


def stop_in_epoch_2(process: subprocess.Popen, workdir: Path, sig: int) -> tuple[int, str]:
    """Send sig as soon as epoch 1's checkpoint is on disk, i.e. early in epoch 2."""
    state = workdir / "checkpoints/train/state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if state.exists() and json.loads(state.read_text())["epochs"] == 1:
            process.send_signal(sig)
            return finish(process)
        time.sleep(0.01)
    raise AssertionError(f"no epoch-1 checkpoint appeared: {finish(process)[1][-2000:]}")


def tracked_result(workdir: Path) -> tuple[str, pd.DataFrame, np.ndarray]:
    """(run id, logged per-epoch metrics, the final model's probabilities on the probe faces) of workdir's run."""
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    try:
        run_id = json.loads((workdir / "artifacts/train_run.json").read_text())["run_id"]
        history = runs.metric_history(run_id, ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"))
        model = model_io.load_model_files(runs.download_model(run_id, workdir / "downloaded"))
    finally:
        mlflow.set_tracking_uri(None)
    return run_id, history, model.predict(to_model_input(model_files.probe_faces()), verbose=0)


@pytest.fixture(scope="module")
def uninterrupted(index_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    code, err = finish(start("train", workdir, index_dir))
    assert code == 0, err[-2000:]
    return tracked_result(workdir)


@pytest.mark.parametrize("sig, exit_code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 130)])
def test_a_stopped_training_resumed_matches_the_uninterrupted_one(index_dir, tmp_path, uninterrupted, sig, exit_code):
    code, err = stop_in_epoch_2(start("train", tmp_path, index_dir), tmp_path, sig)
    assert code == exit_code
    if sig == signal.SIGINT:  # one line saying where the checkpoint is and how to resume
        assert err.strip().splitlines()[-1] == ("error: interrupted; the checkpoint of epoch 1 is in checkpoints/train: "
                                                "run the same command again to resume from it")
        assert "Traceback" not in err
    code, err = finish(start("train", tmp_path, index_dir))
    assert code == 0, err[-2000:]

    run_id, history, probs = tracked_result(tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert len(client.search_runs([client.get_experiment_by_name("fer2013").experiment_id])) == 1
    pd.testing.assert_frame_equal(history, uninterrupted[1])  # every metric of every epoch, exactly
    np.testing.assert_allclose(probs, uninterrupted[2], atol=1e-6)
    assert client.get_run(run_id).info.status == "FINISHED"


@pytest.fixture(scope="module")
def offline_uninterrupted(index_dir, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("offline")
    code, err = finish(start("train_offline", workdir, index_dir, "+export_dir=export"))
    assert code == 0, err[-2000:]
    return workdir


@pytest.mark.parametrize("sig, exit_code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 130)])
def test_offline_training_stopped_and_resumed_matches_the_uninterrupted_one(index_dir, tmp_path, offline_uninterrupted,
                                                                             sig, exit_code):
    ran, stopped = offline_uninterrupted, tmp_path
    assert stop_in_epoch_2(start("train_offline", stopped, index_dir, "+export_dir=export"), stopped, sig)[0] == exit_code
    code, err = finish(start("train_offline", stopped, index_dir, "+export_dir=export"))
    assert code == 0, err[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(ran / "export/history.csv"), pd.read_csv(stopped / "export/history.csv"))
    expected = [json.loads((d / "export" / model_io.EXPECTED).read_text()) for d in (ran, stopped)]
    np.testing.assert_allclose(expected[0], expected[1], atol=1e-6)


def test_a_second_trainer_on_the_same_checkpoint_is_refused_and_a_dead_ones_run_is_marked_killed(index_dir, tmp_path):
    first = start("train", tmp_path, index_dir)
    state = tmp_path / "checkpoints/train/state.json"
    while first.poll() is None and not state.exists():
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # alive and holding the lock while the second one starts
    code, err = finish(start("train", tmp_path, index_dir))
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"error: checkpoints/train is in use by process {first.pid} on {os.uname().nodename}: wait for that training "
        "to end, or give this one another train.checkpoint_dir")
    first.kill()
    first.wait()
    dead_run = json.loads(state.read_text())["run_id"]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(dead_run).info.status == "RUNNING"

    code, err = finish(start("train", tmp_path, index_dir, "train.lr=0.001"))  # another config: a new run
    assert code == 0, err[-2000:]
    assert client.get_run(dead_run).info.status == "KILLED"
    assert json.loads((tmp_path / "artifacts/train_run.json").read_text())["run_id"] != dead_run


SMALL_MODEL = ("model.filters=[8,16]", "model.block_dropout=[0.1,0.1]", "model.dense_units=16")  # short epochs


def logged_history(tracking_uri: str, workdir: Path) -> tuple[str, pd.DataFrame]:
    """(run id, per-epoch metrics as MLflow holds them) of workdir's finished training."""
    run_id = json.loads((workdir / "artifacts/train_run.json").read_text())["run_id"]
    mlflow.set_tracking_uri(tracking_uri)
    try:
        return run_id, runs.metric_history(run_id, trainer.HISTORY_METRICS)
    finally:
        mlflow.set_tracking_uri(None)


def trained_history(workdir: Path) -> pd.DataFrame:
    """Per-epoch metrics as the training computed them (plots/train/history.csv, written from its checkpoints)."""
    return pd.read_csv(workdir / "plots/train/history.csv")


@pytest.mark.services
def test_a_tracking_server_stopped_mid_training_stops_in_one_line_and_resume_loses_nothing(index_dir, tmp_path,
                                                                                          mlflow_server, uninterrupted):
    """The team's server (PostgreSQL, proxied artifacts) goes away after an epoch's checkpoint: one line, then the
    same command resumes into the same run, every epoch's metrics equal to an uninterrupted training's."""
    training = start("train", tmp_path, index_dir, tracking_uri=mlflow_server.uri)
    state = tmp_path / "checkpoints/train/state.json"
    while training.poll() is None and not (state.exists() and json.loads(state.read_text())["epochs"] >= 1):
        time.sleep(0.01)
    training.send_signal(signal.SIGSTOP)  # held after an epoch's checkpoint while the server goes away
    try:
        mlflow_server.stop()
    finally:
        training.send_signal(signal.SIGCONT)
        code, err = finish(training)
        mlflow_server.start()
    checkpointed = json.loads(state.read_text())
    assert code == 1, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: lost the MLflow tracking store {mlflow_server.uri} while logging epoch "
                           f"{checkpointed['epochs']}: "), last
    assert last.endswith(f"the checkpoint of epoch {checkpointed['epochs']} is in checkpoints/train: run the same "
                         "command again to resume from it"), last
    assert "Traceback" not in err

    code, err = finish(start("train", tmp_path, index_dir, tracking_uri=mlflow_server.uri))
    assert code == 0, err[-2000:]
    run_id, logged = logged_history(mlflow_server.uri, tmp_path)
    trained = trained_history(tmp_path)
    report(f"server stopped after epoch {checkpointed['epochs']} of {EPOCHS}; after resuming, run {run_id}: "
          f"epochs expected {EPOCHS}, found {len(logged)}; metric values expected "
          f"{EPOCHS * len(trainer.HISTORY_METRICS)}, found {int(logged[list(trainer.HISTORY_METRICS)].count().sum())}")
    pd.testing.assert_frame_equal(logged, trained, check_exact=True)
    before_stop = pd.DataFrame(checkpointed["history"])[list(trained.columns)]
    pd.testing.assert_frame_equal(logged.head(len(before_stop)), before_stop, check_exact=True, check_dtype=False)
    pd.testing.assert_frame_equal(logged, uninterrupted[1])  # resumed exactly as if never stopped


@pytest.mark.services
@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_two_trainings_at_once_on_one_store_both_complete_with_every_metric(index_dir, tmp_path, store, request):
    uri = f"sqlite:///{tmp_path}/mlflow.db" if store == "sqlite" else request.getfixturevalue("mlflow_server").uri
    workdirs = [tmp_path / "first", tmp_path / "second"]
    trainings = []
    for workdir in workdirs:
        workdir.mkdir()
        trainings.append(start("train", workdir, index_dir, *SMALL_MODEL, tracking_uri=uri))
    results = [finish(process) for process in trainings]
    found = []
    for workdir, (code, err) in zip(workdirs, results):
        assert code == 0, err[-2000:]
        run_id, logged = logged_history(uri, workdir)
        found.append((run_id, logged))
        pd.testing.assert_frame_equal(logged, trained_history(workdir), check_exact=True)
    report(f"{store}: 2 trainings at once -> runs {[run_id for run_id, _ in found]}; epochs expected {EPOCHS} each, "
          f"found {[len(logged) for _, logged in found]}; metric values expected "
          f"{2 * EPOCHS * len(trainer.HISTORY_METRICS)}, found {sum(int(h.iloc[:, 1:].count().sum()) for _, h in found)}")
    assert len({run_id for run_id, _ in found}) == 2
