"""MLflow: the tracking store, runs, per-epoch metrics, model JSON + weights artifacts and registry aliases."""

import json
import logging
import os
import tempfile
from pathlib import Path

import keras
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from emotion.config import TrackingConfig
from emotion.errors import ModelNotFound, TrackingUnavailable
from emotion.model_io import save_model_files

log = logging.getLogger(__name__)

MODEL_ARTIFACTS = "model"  # the run's artifact folder holding model.json + model.weights.h5
CANDIDATE, CHAMPION = "candidate", "champion"
ACCURACY_METRIC = "test_accuracy"


def setup(cfg: TrackingConfig) -> str:
    """Point MLflow at MLFLOW_TRACKING_URI or the configured local store and select the experiment."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # MLflow caches stores by URI: a relative path would reuse one across working directories
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    # fail in seconds, not minutes, when a tracking server is down
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    mlflow.set_tracking_uri(uri)
    try:
        if mlflow.get_experiment_by_name(cfg.experiment) is None:
            local = not uri.startswith(("http://", "https://", "databricks"))
            location = Path(cfg.artifact_dir).resolve().as_uri() if local else None
            mlflow.create_experiment(cfg.experiment, artifact_location=location)
        mlflow.set_experiment(cfg.experiment)
    except MlflowException as err:
        raise TrackingUnavailable(
            f"cannot reach the MLflow tracking store {uri}: {str(err).splitlines()[0]}; start the server or unset "
            "MLFLOW_TRACKING_URI to use the local store"
        ) from err
    return uri


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested config dict -> {'train.epochs': 40, ...} for mlflow.log_params."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class EpochLogger(keras.callbacks.Callback):
    """Logs Keras' epoch logs (loss, accuracy, val_*, learning_rate) to the active run at step = epoch number.

    Epochs the run already holds are skipped, so a resumed fit that repeats an epoch never logs it twice.
    """

    def __init__(self, run_id: str):
        super().__init__()
        history = MlflowClient().get_metric_history(run_id, "loss")
        self.last_logged = max((m.step for m in history), default=0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 > self.last_logged:
            mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch + 1)
            self.last_logged = epoch + 1


def log_model(model: keras.Model) -> None:
    """Log model.json + model.weights.h5 under the run's 'model' artifact folder."""
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.log_artifacts(str(save_model_files(model, tmp)), artifact_path=MODEL_ARTIFACTS)


def metric_history(run_id: str, names: tuple[str, ...]) -> pd.DataFrame:
    """One row per epoch, one column per metric, from the run's logged history."""
    client = MlflowClient()
    series = {
        name: pd.Series({m.step: m.value for m in client.get_metric_history(run_id, name)}, dtype=float)
        for name in names
    }
    return pd.DataFrame(series).rename_axis("epoch").reset_index()


def download_model(run_id: str, dst: str | Path | None = None) -> Path:
    """Download a run's model folder (model.json + weights) and return its local path."""
    try:
        MlflowClient().get_run(run_id)
    except MlflowException as err:
        raise ModelNotFound(
            f"run {run_id} not found in the tracking store {mlflow.get_tracking_uri()}: check the run id "
            "(mlflow ui lists them) or MLFLOW_TRACKING_URI"
        ) from err
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=MODEL_ARTIFACTS, dst_path=None if dst is None else str(dst)
        )
    except (MlflowException, OSError) as err:
        raise ModelNotFound(
            f"run {run_id} has no '{MODEL_ARTIFACTS}' artifacts (model.json + weights): pick a run the train "
            "stage finished"
        ) from err
    return Path(path)


def register(run_id: str, name: str, accuracy: float) -> dict[str, int]:
    """Register the run's model (once per run), alias it 'candidate', and 'champion' if it beats the champion.

    Returns {alias: version} for the aliases that now point at this run's version.
    """
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="FER2013 emotion classifiers (model.json + weights)")
    existing = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    version = existing[0] if existing else client.create_model_version(
        name, source=f"runs:/{run_id}/{MODEL_ARTIFACTS}", run_id=run_id
    )
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    aliases = {CANDIDATE: int(version.version)}
    best = champion_accuracy(client, name)
    if best is None or accuracy > best:
        client.set_registered_model_alias(name, CHAMPION, version.version)
        aliases[CHAMPION] = int(version.version)
    return aliases


def champion_accuracy(client: MlflowClient, name: str) -> float | None:
    """Test accuracy of the current champion's run, or None when there is no champion."""
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return client.get_run(champion.run_id).data.metrics.get(ACCURACY_METRIC)


def write_run_pointer(run_id: str, path: str | Path) -> None:
    """Write {'run_id': ...}: how one stage passes its MLflow run on to the next."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"run_id": run_id}) + "\n")


def read_run_pointer(path: str | Path) -> str:
    """The run id a previous stage wrote to path."""
    if not Path(path).exists():
        raise ModelNotFound(f"{path} not found: run the train stage first (dvc repro train, or python -m stages.train)")
    return json.loads(Path(path).read_text())["run_id"]


def resolve_run_id(model_uri: str) -> str:
    """The run id behind models:/<name>@<alias>, models:/<name>/<version> or runs:/<run id>/..."""
    if model_uri.startswith("runs:/"):
        return model_uri.removeprefix("runs:/").split("/")[0]
    if not model_uri.startswith("models:/"):
        raise ModelNotFound(f"{model_uri}: not a models:/ or runs:/ URI; use models:/<name>@champion or --run-id")
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    try:
        if ref:
            return client.get_model_version_by_alias(name, ref).run_id
        name, _, version = name.rpartition("/")
        return client.get_model_version(name, version).run_id
    except MlflowException as err:
        raise ModelNotFound(
            f"{model_uri} not found in the registry at {mlflow.get_tracking_uri()}: run the pipeline (dvc repro) to "
            "register a model, or pass --run-id"
        ) from err
