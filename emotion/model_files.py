"""The file names of a model folder and of an exported run: one place, importable without Keras."""

from pathlib import Path

from emotion.errors import ModelNotFound

ARCHITECTURE = "model.json"
WEIGHTS = "model.weights.h5"
ONNX = "model.onnx"  # made from the two above by emotion.inference.backends.export_onnx
INT8 = "model.int8.onnx"  # made by realtime.quantize; shipped with a model when its accuracy was checked
INT8_TFLITE = "model.int8.tflite"  # the same for LiteRT, made and shipped beside it
LOGGED = (ARCHITECTURE, WEIGHTS, INT8_TFLITE, INT8)  # logged as the MLflow run's model when present
EXPECTED = "expected_predictions.json"  # the model's outputs on probe_faces(), to catch a broken file
# the rest of an exported run or shipped model folder (see run_export, offline)
PARAMS, HISTORY, METRICS, TAGS, CARD = "params.yaml", "history.csv", "metrics.json", "tags.json", "README.md"
CURVES, CONFUSION = "training_curves.png", "confusion_matrix.png"


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
