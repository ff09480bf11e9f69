"""A model on disk as model.json (architecture) + model.weights.h5 (weights), portable across Keras backends."""

from pathlib import Path

import keras

from emotion.errors import ModelNotFound

ARCHITECTURE = "model.json"
WEIGHTS = "model.weights.h5"
ONNX = "model.onnx"  # made from the two above by realtime.backends.export_onnx
INT8 = "model.int8.onnx"  # made by realtime.quantize; shipped with a model when its accuracy was checked


def save_model_files(model: keras.Model, folder: str | Path) -> Path:
    """Write model.json and model.weights.h5 into folder and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ARCHITECTURE).write_text(model.to_json())
    model.save_weights(folder / WEIGHTS)
    return folder


def load_model_files(folder: str | Path) -> keras.Model:
    """Rebuild a model from model.json and load model.weights.h5 from folder."""
    folder = Path(folder)
    missing = [name for name in (ARCHITECTURE, WEIGHTS) if not (folder / name).exists()]
    if missing:
        raise ModelNotFound(
            f"{folder}: missing {' and '.join(missing)}; a model folder needs {ARCHITECTURE} and {WEIGHTS} "
            "(as the train stage logs them)"
        )
    model = keras.models.model_from_json((folder / ARCHITECTURE).read_text())
    model.load_weights(folder / WEIGHTS)
    return model
