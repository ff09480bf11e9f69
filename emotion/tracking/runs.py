"""MLflow: the tracking store, runs, per-epoch metrics, the logged model (an MLflow Model holding model JSON +
weights, see pyfunc) and its download."""

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from filelock import FileLock
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from emotion.config import TrackingConfig
from emotion.errors import ModelNotFound, TrackingUnavailable, first_line
from emotion.project_files import DEFAULT_MODEL, workspace
from emotion.tracking import pyfunc
from emotion.tracking.model_io import save_model_files
from emotion.tracking.store import check_run_id, has_store, tracking_uri

log = logging.getLogger(__name__)

MODEL_ARTIFACTS = pyfunc.NAME  # runs:/<run id>/model: the MLflow Model (or, in older runs, the loose files)
# MLflow 3's UI opens an experiment of this kind on its runs, instead of its GenAI traces view
KIND_TAG, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"
DVC_EXPERIMENT_ENV = "DVC_EXP_NAME"  # set by `dvc exp run` for the stages it runs
DVC_BASELINE_ENV = "DVC_EXP_BASELINE_REV"  # ... and the commit the experiment derives from
DVC_EXPERIMENT_TAG, DVC_REF_TAG = "dvc_experiment", "dvc_experiment_ref"  # tags of a run that DVC started
TEST_SPLIT_TAG = "test_manifest_sha256"  # which test images the run was scored on (data.test_split_hash)
PARENT_TAG = "mlflow.parentRunId"  # what nests a sweep's trial runs under its parent run in MLflow's UI
RUN_NAME_TAG = "mlflow.runName"  # a new run's name, given with its tags


def setup(cfg: TrackingConfig, create: bool = True) -> str:
    """Point MLflow at MLFLOW_TRACKING_URI or the configured local store and select the experiment.

    With create=False (readers such as the realtime CLI) a local store that does not exist is an error instead of
    a new empty database.
    """
    uri = tracking_uri(cfg)
    if not create and not has_store(uri):
        raise ModelNotFound(
            f"no MLflow store at {uri.removeprefix('sqlite:///')}: run from the project folder (after "
            f"python -m stages.import_run models/{DEFAULT_MODEL}, or dvc repro), or set MLFLOW_TRACKING_URI"
        )
    # fail in seconds, not minutes, when a tracking server is down
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    mlflow.set_tracking_uri(uri)
    try:
        with _first_use_lock(uri):
            if mlflow.get_experiment_by_name(cfg.experiment) is None:
                _create_experiment(cfg, uri)
        experiment = mlflow.set_experiment(cfg.experiment)
        if create and experiment.tags.get(KIND_TAG) != MODEL_DEVELOPMENT:  # a store from before the tag was set
            mlflow.set_experiment_tag(KIND_TAG, MODEL_DEVELOPMENT)
    except MlflowException as err:
        raise _refused(err, uri) or TrackingUnavailable(
            f"cannot reach the MLflow tracking store {uri}: {first_line(err)}; start the server or unset "
            "MLFLOW_TRACKING_URI to use the local store"
        ) from err
    return uri


def _refused(err: MlflowException, uri: str) -> TrackingUnavailable | None:
    """A server with a login (scripts/team_server.sh) that refused this client: what to do about it, in one line."""
    text = str(err)
    if "error code 401" in text or "UNAUTHENTICATED" in text:
        return TrackingUnavailable(f"the MLflow tracking server {uri} wants a login: set MLFLOW_TRACKING_USERNAME and "
                                   "MLFLOW_TRACKING_PASSWORD to an account its admin made for you")
    if "error code 403" in text or "PERMISSION_DENIED" in text:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this user")
        return TrackingUnavailable(f"the MLflow tracking server {uri} does not let {user} write here: ask its admin "
                                   "for EDIT permission on the experiment")
    return None


def _first_use_lock(uri: str) -> contextlib.AbstractContextManager:
    """Processes opening one SQLite store take turns until its tables and experiment exist: MLflow's table
    migrations fail when two processes create a new store at once (a lock file beside it, as the checkpoint's)."""
    if uri.startswith("sqlite:///"):
        return FileLock(uri.removeprefix("sqlite:///") + ".lock")
    return contextlib.nullcontext()


def _create_experiment(cfg: TrackingConfig, uri: str) -> None:
    """Create the experiment, unless another process (a training on a server, at once) just did."""
    local = not uri.startswith(("http://", "https://", "databricks"))
    location = (workspace() / cfg.artifact_dir).resolve().as_uri() if local else None
    try:
        mlflow.create_experiment(cfg.experiment, artifact_location=location, tags={KIND_TAG: MODEL_DEVELOPMENT})
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


# What a lost tracking server raises: MLflow's own errors, and requests' / urllib3's connection errors (OSError)
CONNECTION_ERRORS = (MlflowException, OSError)


def unreachable(err: Exception, doing: str) -> TrackingUnavailable:
    return TrackingUnavailable(f"lost the MLflow tracking store {mlflow.get_tracking_uri()} while {doing}: "
                               f"{first_line(err)}")


def dvc_experiment_tags() -> dict[str, str]:
    """The DVC experiment running this process, as DVC names it in the environment: its name and git ref
    (refs/exps/<baseline[:2]>/<baseline[2:]>/<name>, what `dvc exp show`, apply and branch take); none outside one."""
    name, baseline = os.environ.get(DVC_EXPERIMENT_ENV), os.environ.get(DVC_BASELINE_ENV)
    if not name or not baseline:
        return {}
    return {DVC_EXPERIMENT_TAG: name, DVC_REF_TAG: f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"}


@contextlib.contextmanager
def tracked_run(run_id: str | None, tags: dict[str, str] | None = None) -> Iterator[str]:
    """Start (or continue) a run and end it FINISHED, KILLED on Ctrl-C, or FAILED; yields its run id.

    A new run is named after the DVC experiment that runs it, if any, with that experiment's git ref as a tag
    (dvc_experiment_ref), and carries tags from its start (a sweep's child: PARENT_TAG). A tracking server lost on
    the way is reported as TrackingUnavailable, in one line.
    """
    try:
        run = mlflow.start_run(run_id=run_id, run_name=None if run_id else os.environ.get(DVC_EXPERIMENT_ENV),
                               tags=None if run_id else {**dvc_experiment_tags(), **(tags or {})})
    except CONNECTION_ERRORS as err:
        raise unreachable(err, "starting the run") from err
    status = "FAILED"
    try:
        yield run.info.run_id
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except CONNECTION_ERRORS as err:
        raise unreachable(err, "logging") from err
    finally:
        try:
            mlflow.end_run(status)
        except CONNECTION_ERRORS:  # the server is gone: the run stays RUNNING until the next start marks it
            log.debug("could not end run %s as %s", run.info.run_id, status)


def mark_abandoned(run_id: str) -> None:
    """A run whose process died (its checkpoint was not resumed) is marked KILLED instead of staying RUNNING."""
    client = MlflowClient()
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")
            log.info("run %s was left RUNNING by a process that died; marked KILLED", run_id)
    except MlflowException:
        log.debug("run %s of an abandoned checkpoint is not in this store", run_id)


def _log_history(history: list[dict]) -> None:
    """Log per-epoch metrics rows ({'epoch': n, 'loss': ...}) to the active run at step = epoch."""
    for row in history:
        mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))


def log_epochs(run_id: str, history: list[dict]) -> None:
    """Log per-epoch metrics rows ({'epoch': n, 'loss': ...}) at step = epoch, skipping epochs the run holds."""
    try:
        logged = {m.step for m in MlflowClient().get_metric_history(run_id, "loss")}
        _log_history([row for row in history if row["epoch"] not in logged])
    except CONNECTION_ERRORS as err:
        raise unreachable(err, f"logging epoch {history[-1]['epoch'] if history else 0}") from err


class EpochLogger(keras.callbacks.Callback):
    """Logs each finished epoch's Keras logs (loss, accuracy, val_*, learning_rate) at step = epoch number (1-based).

    Put it after the checkpoint callback: an epoch is on disk before MLflow hears of it, so a lost server loses
    nothing (the next start logs what the run lacks).
    """

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        log_epochs(self.run_id, [{"epoch": epoch + 1, **(logs or {})}])


def log_model(model: keras.Model, calibration: dict | None = None, test_time: dict | None = None,
              training_faces: np.ndarray | None = None, params: dict | None = None) -> str:
    """Log the Keras model as the active run's MLflow Model (see pyfunc): model.json + model.weights.h5,
    calibration.json and test_time.json, model.onnx, and model.int8.onnx calibrated on a sample of training_faces
    when given (see quantization.add_onnx_models); the calibration's scores become run metrics (val_ece, ...).
    Returns the model id."""
    from emotion.inference import quantization  # ONNX conversion: only where a model is logged

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_model_files(model, Path(tmp) / pyfunc.FOLDER, calibration, test_time)
        quantization.add_onnx_models(model, folder, training_faces)
        model_id = pyfunc.log_model(folder, params)
    if calibration:
        mlflow.log_metrics(calibration, model_id=model_id)
    return model_id


def logged_model_id(run_id: str) -> str | None:
    """The id of the MLflow Model a run logged, or None for a run whose model files are loose artifacts."""
    outputs = MlflowClient().get_run(run_id).outputs
    return outputs.model_outputs[-1].model_id if outputs and outputs.model_outputs else None


def log_run_info(params: dict, tags: dict) -> None:
    """Log the active run's parameters and tags."""
    mlflow.log_params(params)
    mlflow.set_tags(tags)


def set_tags(run_id: str, tags: dict[str, str]) -> None:
    """Set tags on a run, active or finished."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def log_scores(run_id: str, metrics: dict[str, float], figure_files: list[str | Path], test_split: str) -> None:
    """Add test metrics (linked to the run's logged model), figures (confusion, reliability) and the test split's
    hash (data.test_split_hash) to a finished run."""
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics, model_id=logged_model_id(run_id))  # on the model's page in the UI too
        for path in figure_files:
            mlflow.log_artifact(str(path))
        mlflow.set_tag(TEST_SPLIT_TAG, test_split)


def log_figure(fig, name: str) -> None:
    """Log a matplotlib figure as an artifact of the active run."""
    mlflow.log_figure(fig, name)


def start_parent_run(experiment: str, name: str, params: dict, tags: dict[str, str]) -> str:
    """Create a run in experiment for other runs to nest under (a sweep's), left RUNNING for them; returns its id."""
    client = MlflowClient()
    run_id = client.create_run(client.get_experiment_by_name(experiment).experiment_id, tags=tags,
                               run_name=name).info.run_id
    client.log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])
    return run_id


def log_summary(run_id: str, metrics: dict[str, float], tags: dict[str, str], figure, figure_name: str) -> None:
    """Record (or update) a finished summary on a run, active or not, and mark it FINISHED."""
    client = MlflowClient()
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
                     tags=[RunTag(key, value) for key, value in tags.items()])
    if figure is not None:
        client.log_figure(run_id, figure, figure_name, save_kwargs={"bbox_inches": "tight"})  # long axis labels
    client.set_terminated(run_id, "FINISHED")


def run_params_and_tags(run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """A run's logged params and its own tags (MLflow's system tags left out)."""
    run = MlflowClient().get_run(check_run_id(run_id))
    return run.data.params, {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}


def download_artifact_if_logged(run_id: str, name: str, folder: Path) -> None:
    """Copy the run's top-level artifact `name` into folder, if the run has one."""
    if name in {a.path for a in MlflowClient().list_artifacts(run_id)}:
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(folder))


def find_run(tag: str, value: str) -> str | None:
    """The id of a run in the current experiment whose tag has this value, or None."""
    found = mlflow.search_runs(filter_string=f"tags.{tag} = '{value}'", output_format="list")
    return found[0].info.run_id if found else None


def log_finished_run(name: str, tags: dict, params: dict, history: list[dict], metrics: dict[str, float],
                     model_folder: Path, other_files: list[Path]) -> str:
    """Log a complete run at once (an imported one): per-epoch history rows, the model folder as its MLflow Model
    (with model.onnx, made here when missing), final metrics (linked to the model) and files."""
    from emotion.inference import quantization  # ONNX conversion: only where a model is logged
    from emotion.tracking.model_io import load_model_files

    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(params)
        _log_history(history)
        quantization.add_onnx_models(load_model_files(model_folder), model_folder)
        mlflow.log_metrics(metrics, model_id=pyfunc.log_model(model_folder, params))
        for path in other_files:
            mlflow.log_artifact(str(path))
    return run.info.run_id


def metric_history(run_id: str, names: tuple[str, ...]) -> pd.DataFrame:
    """One row per epoch, one column per metric, from the run's logged history."""
    client = MlflowClient()
    series = {
        name: pd.Series({m.step: m.value for m in client.get_metric_history(run_id, name)}, dtype=float)
        for name in names
    }
    return pd.DataFrame(series).rename_axis("epoch").reset_index()


def download_model(run_id: str, dst: str | Path | None = None) -> Path:
    """Download a run's model and return the local path of its model folder (model.json + weights, ...)."""
    check_run_id(run_id)
    try:
        MlflowClient().get_run(run_id)
    except MlflowException as err:
        raise ModelNotFound(
            f"run {run_id} not found in the tracking store {mlflow.get_tracking_uri()}: check the run id "
            "(mlflow ui lists them) or MLFLOW_TRACKING_URI"
        ) from err
    try:  # the run's MLflow Model, or (logged before it was one) its artifact folder of loose files
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=MODEL_ARTIFACTS, dst_path=None if dst is None else str(dst)
        )
    except (MlflowException, OSError) as err:
        raise ModelNotFound(
            f"run {run_id} has no '{MODEL_ARTIFACTS}' artifacts (model.json + weights): pick a run the train "
            "stage finished"
        ) from err
    return pyfunc.model_folder(path)




