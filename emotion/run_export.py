"""A run as a self-contained folder (model files, params, per-epoch history, test metrics, figures), and back.

The same folder is what `models/<name>/` ships: importing it makes the model a browsable, registered MLflow run
on any machine, and a run trained where MLflow is absent (an accelerator machine) travels the same way.
"""

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import yaml
from mlflow import MlflowClient

from emotion import config, tracking
from emotion.training import HISTORY_METRICS
from emotion.errors import ModelNotFound
from emotion.evaluation import Scores
from emotion.model_io import (
    ARCHITECTURE, CARD, CONFUSION, CURVES, HISTORY, INT8, METRICS, PARAMS, TAGS, WEIGHTS, load_model_files,
    write_expected_predictions,
)

log = logging.getLogger(__name__)

FIGURES = (CURVES, CONFUSION)


def unflatten(flat: dict[str, str]) -> dict:
    """MLflow's flat string params ('train.epochs': '40') back to a nested, typed config."""
    tree: dict = {}
    for key, text in sorted(flat.items()):
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _parse(text)
    return tree


def _parse(text: str):
    """A param value as MLflow stored it (str() of a Python value) back to that value."""
    if text == "None":
        return None
    try:
        return json.loads(text)  # numbers (5e-05, which YAML reads as a string) and lists of them
    except json.JSONDecodeError:
        return yaml.safe_load(text)  # True/False, plain strings


def export_run(run_id: str, folder: str | Path) -> Path:
    """Write a tracked run (model, params, history, test metrics, tags, figures) into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    run = MlflowClient().get_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        for name in (ARCHITECTURE, WEIGHTS):
            shutil.copy(tracking.download_model(run_id, tmp) / name, folder / name)
        logged = {a.path for a in MlflowClient().list_artifacts(run_id)}
        for name in FIGURES:
            if name in logged:
                shutil.copy(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=tmp),
                            folder / name)
    write_expected_predictions(load_model_files(folder), folder)
    (folder / PARAMS).write_text(yaml.safe_dump(unflatten(run.data.params), sort_keys=False))
    tracking.metric_history(run_id, HISTORY_METRICS).to_csv(folder / HISTORY, index=False)
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    (folder / TAGS).write_text(json.dumps(tags | {"exported_from_run": run_id}, indent=2) + "\n")
    return folder


def import_run(folder: str | Path, registered_model: str) -> tuple[str, dict]:
    """Log an exported run folder as an MLflow run (once per weights file) and register its model if scored.

    Returns (run id, registry aliases now pointing at it). Call tracking.setup first.
    """
    folder = Path(folder)
    for name in (ARCHITECTURE, WEIGHTS, PARAMS):
        if not (folder / name).exists():
            raise ModelNotFound(f"{folder}: missing {name}; an exported run holds {ARCHITECTURE}, {WEIGHTS}, {PARAMS}")
    weights_sha = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    found = mlflow.search_runs(filter_string=f"tags.model_weights_sha256 = '{weights_sha}'", output_format="list")
    report = json.loads((folder / METRICS).read_text()) if (folder / METRICS).exists() else None
    run_id = found[0].info.run_id if found else _log_run(folder, weights_sha, report)
    if found:
        log.info("%s was imported before as run %s", folder, run_id)
    aliases = tracking.register(run_id, registered_model, report["accuracy"]) if report else {}
    return run_id, aliases


def _log_run(folder: Path, weights_sha: str, report: dict | None) -> str:
    tags = json.loads((folder / TAGS).read_text()) if (folder / TAGS).exists() else {}
    with mlflow.start_run(run_name=folder.name) as run:
        mlflow.set_tags(tags | {"model_weights_sha256": weights_sha, "imported_from": str(folder)})
        mlflow.log_params(config.flatten(yaml.safe_load((folder / PARAMS).read_text())))
        if (folder / HISTORY).exists():
            for row in pd.read_csv(folder / HISTORY).to_dict("records"):
                step = int(row.pop("epoch"))
                mlflow.log_metrics({k: float(v) for k, v in row.items() if pd.notna(v)}, step=step)
        if report:
            mlflow.log_metrics(Scores.from_report(report).flat())
        for name in (ARCHITECTURE, WEIGHTS, INT8):
            if (folder / name).exists():
                mlflow.log_artifact(str(folder / name), artifact_path=tracking.MODEL_ARTIFACTS)
        for name in (*FIGURES, CARD):
            if (folder / name).exists():
                mlflow.log_artifact(str(folder / name))
    return run.info.run_id
