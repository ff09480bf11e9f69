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

import pandas as pd
import yaml

from emotion import config
from emotion.errors import ModelNotFound
from emotion.evaluation.scoring import Scores
from emotion.tracking import registry, runs
from emotion.training.trainer import HISTORY_METRICS
from emotion.tracking.model_files import (
    ARCHITECTURE, CARD, CONFUSION, CURVES, ENSEMBLE, HISTORY, LOGGED, METRICS, PARAMS, RELIABILITY, TAGS, WEIGHTS,
    check_model_folder,
)
from emotion.tracking.pyfunc import FOLDER as MODEL_FOLDER
from emotion.tracking.model_io import load_model_files, write_expected_predictions

log = logging.getLogger(__name__)

FIGURES = (CURVES, CONFUSION, RELIABILITY)
WEIGHTS_TAG = "model_weights_sha256"  # an imported run's identity: importing the same weights again finds it


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
    params, tags = runs.run_params_and_tags(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        downloaded = runs.download_model(run_id, tmp)
        for name in LOGGED:
            if (downloaded / name).exists():  # calibration.json: runs trained with train.calibrate; int8 models, ...
                shutil.copy(downloaded / name, folder / name)
        for name in FIGURES:
            runs.download_artifact_if_logged(run_id, name, folder)
    write_expected_predictions(load_model_files(folder), folder)
    (folder / PARAMS).write_text(yaml.safe_dump(unflatten(params), sort_keys=False))
    runs.metric_history(run_id, HISTORY_METRICS).to_csv(folder / HISTORY, index=False)
    (folder / TAGS).write_text(json.dumps(tags | {"exported_from_run": run_id}, indent=2) + "\n")
    return folder


def import_run(folder: str | Path, registered_model: str) -> tuple[str, dict]:
    """Log an exported run folder as an MLflow run (once per weights file) and register its model if scored.

    Returns (run id, registry aliases now pointing at it). Call runs.setup first.
    """
    folder = check_model_folder(folder)
    params = _params_of(folder)
    weights_sha = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    tags = json.loads((folder / TAGS).read_text()) if (folder / TAGS).exists() else {}
    found = runs.find_run(WEIGHTS_TAG, weights_sha)
    report = json.loads((folder / METRICS).read_text()) if (folder / METRICS).exists() else None
    run_id = found or _log_run(folder, params, tags | {WEIGHTS_TAG: weights_sha, "imported_from": str(folder)}, report)
    if found:
        runs.set_tags(run_id, tags)  # what the folder records now (e.g. its test split) and an old import lacks
        log.info("%s was imported before as run %s", folder, run_id)
    aliases = registry.register(run_id, registered_model, report["accuracy"]) if report else {}
    return run_id, aliases


def _params_of(folder: Path) -> dict:
    """The flat params to log: the training config (params.yaml), or an ensemble's member folders (ensemble.json)."""
    if (folder / PARAMS).exists():
        return config.flatten(yaml.safe_load((folder / PARAMS).read_text()))
    if (folder / ENSEMBLE).exists():
        return config.flatten({"ensemble": json.loads((folder / ENSEMBLE).read_text())})
    raise ModelNotFound(f"{folder}: missing {PARAMS}; an exported run holds {ARCHITECTURE}, {WEIGHTS}, {PARAMS} "
                        f"(an ensemble folder, {ENSEMBLE} instead)")


def _log_run(folder: Path, params: dict, tags: dict, report: dict | None) -> str:
    history = pd.read_csv(folder / HISTORY).to_dict("records") if (folder / HISTORY).exists() else []
    with tempfile.TemporaryDirectory() as tmp:  # the MLflow Model's folder: the model's files and the card's metrics
        model_folder = Path(tmp) / MODEL_FOLDER
        model_folder.mkdir()
        for name in (*LOGGED, METRICS):
            if (folder / name).exists():
                shutil.copy(folder / name, model_folder / name)
        return runs.log_finished_run(
            name=folder.name,
            tags=tags,
            params=params,
            history=[{k: v for k, v in row.items() if pd.notna(v)} for row in history],
            metrics=Scores.from_report(report).flat() if report else {},
            model_folder=model_folder,
            other_files=[folder / name for name in (*FIGURES, CARD) if (folder / name).exists()],
        )
