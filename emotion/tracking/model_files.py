"""The file names of a model folder and of an exported run: one place, importable without Keras."""

import json
from pathlib import Path

import numpy as np

from emotion.data.labels import CLASS_NAMES
from emotion.errors import ModelNotFound

ARCHITECTURE = "model.json"
WEIGHTS = "model.weights.h5"
ONNX = "model.onnx"  # made from the two above by emotion.inference.backends.export_onnx
INT8 = "model.int8.onnx"  # made by realtime.quantize; shipped with a model when its accuracy was checked
INT8_TFLITE = "model.int8.tflite"  # the same for LiteRT, made and shipped beside it
ENSEMBLE = "ensemble.json"  # an ensemble's member folders (stages.ensemble)
CALIBRATION = "calibration.json"  # the temperature (and class offsets) baked into the weights, scores before/after
TEST_TIME = "test_time.json"  # the model's test-time views (emotion.inference.views); none: plain
# the MLflow run's model: those of them the folder has
LOGGED = (ARCHITECTURE, WEIGHTS, CALIBRATION, TEST_TIME, ENSEMBLE, INT8_TFLITE, INT8)
EXPECTED = "expected_predictions.json"  # the model's outputs on probe_faces(), to catch a broken file
# the rest of an exported run or shipped model folder (see run_export, offline)
PARAMS, HISTORY, METRICS, TAGS, CARD = "params.yaml", "history.csv", "metrics.json", "tags.json", "README.md"
CURVES, CONFUSION, RELIABILITY = "training_curves.png", "confusion_matrix.png", "reliability.png"


def calibration_of(folder: str | Path) -> tuple[float, np.ndarray | None]:
    """The temperature and the per-class offsets baked into the folder's model (its calibration.json; 1.0 and None
    without one or without offsets)."""
    path = Path(folder) / CALIBRATION
    if not path.exists():
        return 1.0, None
    record = json.loads(path.read_text())
    offsets = [record.get(f"class_bias_{name}") for name in CLASS_NAMES]
    return float(record["temperature"]), None if None in offsets else np.array(offsets)


def check_model_folder(folder: str | Path) -> Path:
    """folder, if it holds model.json and model.weights.h5, else ModelNotFound naming what is missing."""
    folder = Path(folder)
    missing = [name for name in (ARCHITECTURE, WEIGHTS) if not (folder / name).exists()]
    if missing:
        raise ModelNotFound(
            f"{folder}: missing {' and '.join(missing)}; a model folder needs {ARCHITECTURE} and {WEIGHTS} "
            "(as the train stage logs them)"
        )
    return folder


def probe_faces() -> np.ndarray:
    """Four fixed synthetic faces (uint8, 48x48): a gradient, a checkerboard, noise and a dark frame with a bright box."""
    ramp = np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (48, 1))
    checker = ((np.indices((48, 48)).sum(axis=0) // 6) % 2 * 255).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (48, 48), np.uint8)
    box = np.zeros((48, 48), np.uint8)
    box[12:36, 12:36] = 200
    return np.stack([ramp, checker, noise, box])
