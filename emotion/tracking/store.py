"""The tracking store's address and run ids, without importing MLflow: which store, whether it exists, whether
a string is a run id, and the small file one stage passes its run id on in."""

import json
import os
import re
from pathlib import Path

from emotion.config import TrackingConfig
from emotion.errors import ModelNotFound
from emotion.project_files import workspace

RUN_ID = re.compile(r"[0-9a-f]{32}")

def write_run_pointer(run_id: str, path: str | Path) -> None:
    """Write {'run_id': ...}: how one stage passes its MLflow run on to the next."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"run_id": run_id}) + "\n")


def read_run_pointer(path: str | Path) -> str:
    """The run id a previous stage wrote to path."""
    if not Path(path).exists():
        raise ModelNotFound(f"{path} not found: run the train stage first (dvc repro train, or python -m stages.train)")
    return json.loads(Path(path).read_text())["run_id"]


def tracking_uri(cfg: TrackingConfig) -> str:
    """MLFLOW_TRACKING_URI, else the configured store; a local SQLite store's path made absolute, in the workspace
    (the project, also for an experiment DVC runs in a temporary copy)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # MLflow caches stores by URI: a relative path would reuse one across working directories
        uri = f"sqlite:///{(workspace() / uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def has_store(uri: str) -> bool:
    """False for a local SQLite store whose file does not exist; any other store is taken to exist."""
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


def check_run_id(run_id: str) -> str:
    """run_id if it has the form of an MLflow run id (32 hex characters), else ModelNotFound."""
    if not RUN_ID.fullmatch(str(run_id)):
        raise ModelNotFound(
            f"{run_id!r} is not an MLflow run id (32 hex characters): copy it from mlflow ui or "
            "artifacts/train_run.json, or use --model-uri models:/fer-emotion@champion"
        )
    return run_id
