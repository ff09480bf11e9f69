"""The logged and registered model as an MLflow Model (pyfunc flavor, written as "models from code"): what
`mlflow.pyfunc.load_model`, `mlflow models serve` and `mlflow models predict` run.

Its artifacts are the model folder as the project writes it (model.json + weights, model.onnx and model.int8.onnx,
calibration, test-time views, the card's metrics where known) and BlazeFace's model files; predict runs the
project's EmotionRecognizer on ONNX Runtime, without TensorFlow. Input: a batch of 48x48 grey faces (uint8), and/or
whole images as base64 strings in the `images` param, which go through face detection first.
"""

import base64
import binascii
import importlib.metadata
import shutil
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

import emotion
from emotion.data.labels import CLASS_NAMES
from emotion.data.preprocess import IMG_SIZE
from emotion.errors import UserError, first_line
from emotion.tracking.model_files import probe_faces

NAME = "model"  # the logged model's name in its run: runs:/<run id>/model
FOLDER, DETECTOR = "model", "detector"  # its artifacts: the model folder, BlazeFace's .tflite files
ENTRY = Path(__file__).with_name("pyfunc_model.py")  # the file MLflow runs to get the model (models from code)
MODEL_TYPE = "emotion-classifier"
# what inference needs (pinned to this environment's versions when logged): no TensorFlow, no Keras
INFERENCE_PACKAGES = ("numpy", "pandas", "pillow", ("opencv-python-headless", "opencv-python"), "onnxruntime",
                      "omegaconf", "ai-edge-litert")
DEFAULT_BACKEND = "auto"
COLUMNS = ("input", "item", "x", "y", "w", "h", "label", "confidence", *CLASS_NAMES)


def signature() -> ModelSignature:
    """Faces in, one row per face out; params: images (base64 JPEG/PNG/WebP/BMP) and the backend."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, IMG_SIZE, IMG_SIZE))]),
        outputs=Schema([ColSpec("string", "input"), ColSpec("long", "item"), *(ColSpec("long", c) for c in "xywh"),
                        ColSpec("string", "label"), ColSpec("double", "confidence"),
                        *(ColSpec("double", name) for name in CLASS_NAMES)]),
        params=ParamSchema([ParamSpec("images", "string", [], (-1,)),
                            ParamSpec("backend", "string", DEFAULT_BACKEND)]),
    )


def requirements() -> list[str]:
    """INFERENCE_PACKAGES pinned to the versions installed here (the first of each alternative that is)."""
    pins = []
    for names in INFERENCE_PACKAGES:
        for name in (names,) if isinstance(names, str) else names:
            try:
                pins.append(f"{name}=={importlib.metadata.version(name)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return pins


def log_model(folder: str | Path, params: dict | None = None) -> str:
    """Log the model folder as the active run's MLflow Model (runs:/<run id>/model) and return its model id; params
    (the run's config) show on its page in the MLflow UI."""
    from emotion.inference.blazeface import MODELS, model_path

    with tempfile.TemporaryDirectory() as tmp:
        detector = Path(tmp) / DETECTOR
        detector.mkdir()
        for name in MODELS:
            shutil.copy(model_path(name), detector)
        info = mlflow.pyfunc.log_model(
            name=NAME, python_model=str(ENTRY), artifacts={FOLDER: str(folder), DETECTOR: str(detector)},
            code_paths=[str(Path(emotion.__file__).parent)], signature=signature(), input_example=probe_faces()[:2],
            pip_requirements=requirements(), params=params, model_type=MODEL_TYPE,
        )
    return info.model_id


def model_folder(downloaded: str | Path) -> Path:
    """The model folder inside a downloaded MLflow Model (as its MLmodel file names it); a folder of loose files
    (a run logged before its model was an MLflow Model) as it is."""
    downloaded = Path(downloaded)
    if not (downloaded / "MLmodel").exists():
        return downloaded
    artifacts = Model.load(downloaded).flavors["python_function"].get("artifacts", {})
    if FOLDER not in artifacts:
        raise MlflowException(f"{downloaded} is an MLflow Model without a '{FOLDER}' artifact: not this project's")
    return downloaded / artifacts[FOLDER]["path"]


class EmotionModel(mlflow.pyfunc.PythonModel):
    """predict(faces, params={"images": [...], "backend": "auto"}) -> one row per face: input (face or image), item
    (its position in the faces or in images), box (x, y, w, h; a face's whole 48x48), label, confidence and the 7
    probabilities."""

    def load_context(self, context) -> None:
        self.folder, self.detector = context.artifacts[FOLDER], context.artifacts[DETECTOR]
        self.recognizers: dict = {}
        self.recognizer(DEFAULT_BACKEND)  # a broken model fails when loaded, not at the first request

    def recognizer(self, backend: str):
        """The recognizer on this backend (made once)."""
        if backend not in self.recognizers:
            from emotion.config import RealtimeConfig
            from emotion.inference.recognizer import EmotionRecognizer

            try:
                self.recognizers[backend] = EmotionRecognizer.from_dir(
                    self.folder, backend, RealtimeConfig(blazeface_dir=self.detector))
            except UserError as err:
                raise MlflowException.invalid_parameter_value(first_line(err)) from err
        return self.recognizers[backend]

    def predict(self, context, model_input: np.ndarray, params: dict | None = None) -> pd.DataFrame:
        params = params or {}
        recognizer = self.recognizer(params.get("backend") or DEFAULT_BACKEND)
        faces = np.asarray(model_input, np.uint8)
        rows = [("face", i, 0, 0, IMG_SIZE, IMG_SIZE, CLASS_NAMES[int(np.argmax(p))], float(np.max(p)), *map(float, p))
                for i, p in enumerate(recognizer.classify(faces) if len(faces) else [])]
        for item, text in enumerate(params.get("images") or []):
            for face in recognizer.analyze(decode_image(text, item), "rgb"):
                rows.append(("image", item, *face.box, face.label, face.confidence, *face.probs.values()))
        return pd.DataFrame(rows, columns=list(COLUMNS))


def decode_image(text: str, item: int) -> np.ndarray:
    """The RGB image in images[item], a base64 string of an encoded image, or MLflow's error saying what is wrong."""
    from emotion.config import ServeConfig
    from emotion.inference.image_bytes import decode

    try:  # the same limit on an image's size as the project's server
        return decode(base64.b64decode(text, validate=True), ServeConfig.max_image_pixels)
    except (binascii.Error, ValueError) as err:
        raise MlflowException.invalid_parameter_value(
            f"images[{item}] is not base64 ({first_line(err)}): send base64.b64encode(open(path, 'rb').read())") from err
    except UserError as err:
        raise MlflowException.invalid_parameter_value(f"images[{item}]: {first_line(err)}") from err
