"""A model on disk as model.json (architecture) + model.weights.h5 (weights), portable across Keras backends."""

import json
from pathlib import Path

import keras
import numpy as np

from emotion.data.preprocess import to_model_input
from emotion.errors import ModelInvalid, first_line
from emotion.tracking.model_files import (
    ARCHITECTURE, CALIBRATION, EXPECTED, TEST_TIME, WEIGHTS, check_model_folder, probe_faces,
)


def save_model_files(model: keras.Model, folder: str | Path, calibration: dict | None = None,
                     test_time: dict | None = None) -> Path:
    """Write model.json and model.weights.h5 (and calibration.json, the temperature baked into them; test_time.json,
    its test-time views as views.record gives them) into folder and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ARCHITECTURE).write_text(model.to_json())
    model.save_weights(folder / WEIGHTS)
    if calibration:
        (folder / CALIBRATION).write_text(json.dumps(calibration, indent=2) + "\n")
    if test_time:
        (folder / TEST_TIME).write_text(json.dumps(test_time) + "\n")
    return folder


def load_model_files(folder: str | Path) -> keras.Model:
    """Rebuild a model from model.json and load model.weights.h5 from folder."""
    folder = check_model_folder(folder)
    try:
        model = keras.models.model_from_json((folder / ARCHITECTURE).read_text())
    except (ValueError, TypeError, KeyError, AttributeError) as err:  # malformed JSON, unknown or unsafe layers
        raise ModelInvalid(
            f"{folder / ARCHITECTURE}: Keras refuses this architecture ({first_line(err)}); use a model folder "
            "written by this project (train, export_run or a shipped model)"
        ) from err
    try:
        model.load_weights(folder / WEIGHTS)
    except (ValueError, OSError, KeyError) as err:
        raise ModelInvalid(
            f"{folder / WEIGHTS}: cannot load the weights ({first_line(err)}); the file is corrupt or belongs to "
            "another architecture: download or export the model again"
        ) from err
    return model


def write_expected_predictions(model: keras.Model, folder: str | Path) -> None:
    """Record the model's probabilities on probe_faces() beside its files."""
    probs = model.predict(to_model_input(probe_faces()), verbose=0)
    (Path(folder) / EXPECTED).write_text(json.dumps(np.round(probs, 6).tolist()) + "\n")
