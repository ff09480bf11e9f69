"""Inference backends: Keras (eager call), ONNX Runtime (converted once per model, checked against Keras) and LiteRT
(the int8 .tflite model that realtime.quantize makes); each averages over the model's test-time views (views).

Keras (and with it TensorFlow or JAX) is imported only when a Keras model is loaded: a folder that holds its ONNX
or TFLite models is labelled without it.
"""

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotion.config import BACKENDS
from emotion.data.labels import NUM_CLASSES
from emotion.data.preprocess import INPUT_SHAPE, to_model_input
from emotion.errors import ModelInvalid, UserError, first_line
from emotion.inference import views
from emotion.inference.litert import litert_interpreter
from emotion.tracking.model_files import INT8, INT8_TFLITE, ONNX

log = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-4
FACES_PER_CALL = 256  # the model's memory grows with the batch, 10 views of each face with crops: 20 GB at 7,178


class Backend:
    """What every backend does: run the model on each test-time view of the faces and average."""

    name = ""
    test_time = views.TestTime()  # load_backend sets the model's own (or the one asked for)

    def predict(self, faces_u8: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) for uint8 faces (N, 48, 48), averaged over the test-time views; FACES_PER_CALL faces
        (and their views) at a time."""
        if len(faces_u8) <= FACES_PER_CALL:
            return self.test_time.predict(self.run, faces_u8)
        return np.concatenate([self.test_time.predict(self.run, faces_u8[start : start + FACES_PER_CALL])
                               for start in range(0, len(faces_u8), FACES_PER_CALL)])

    def run(self, faces_u8: np.ndarray) -> np.ndarray:
        """The model's probabilities (N, 7) for these faces as they are."""
        raise NotImplementedError


class KerasBackend(Backend):
    """Calls the Keras model directly: much faster than model.predict for one small batch."""

    name = "keras"

    def __init__(self, model):
        self.model = model

    def run(self, faces_u8: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(to_model_input(faces_u8), training=False))


class OnnxBackend(Backend):
    """ONNX Runtime on the CPU, for a model file or its bytes (as a worker on another machine gets it)."""

    name = "onnx"

    def __init__(self, path: str | Path | bytes):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1  # a frame's few faces: one thread has the lowest latency, leaves a core free
        model = path if isinstance(path, bytes) else str(path)
        self.path = None if isinstance(path, bytes) else Path(path)
        try:
            self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own untyped errors for unreadable models
            raise ModelInvalid(f"{self.path or 'the ONNX model'}: ONNX Runtime cannot load it "
                               f"({first_line(err)}); delete the file to convert the model again, or "
                               "use --backend keras") from err
        self.input_name = self.session.get_inputs()[0].name

    def run(self, faces_u8: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: to_model_input(faces_u8)})[0]


class LiteRTBackend(Backend):
    """An int8 .tflite model (a file or its bytes) on LiteRT, one thread, one face per call: the fastest way to label a
    frame's few faces on a CPU. The model ends in logits; the softmax runs here in float (int8 probabilities come in
    1/256 steps that do not sum to 1)."""

    name = "litert-int8"

    def __init__(self, path: str | Path | bytes):
        self.path = None if isinstance(path, bytes) else Path(path)
        self.interpreter = litert_interpreter(path, "make it again with python -m realtime.quantize, or use "
                                                    "--backend onnx-int8")
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.lock = threading.Lock()  # one interpreter: its tensors are not shared across threads

    def run(self, faces_u8: np.ndarray) -> np.ndarray:
        faces = to_model_input(faces_u8)
        logits = np.empty((len(faces), NUM_CLASSES), np.float32)
        with self.lock:
            for k in range(len(faces)):
                self.interpreter.set_tensor(self.input, faces[k:k + 1])
                self.interpreter.invoke()
                logits[k] = self.interpreter.get_tensor(self.output)[0]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ModelFile:
    """A model file's bytes and the views to label with: what a worker on another machine needs."""

    data: bytes
    test_time: views.TestTime = views.TestTime()


def file_backend(model: ModelFile) -> Backend:
    """The backend for a model file (as a worker on another machine gets it): LiteRT for a TFLite flatbuffer, else
    ONNX Runtime."""
    backend = LiteRTBackend(model.data) if model.data[4:8] == b"TFL3" else OnnxBackend(model.data)
    backend.test_time = model.test_time
    return backend


def export_onnx(model, folder: Path) -> Path:
    """Convert the model to folder/model.onnx (once), checking it matches Keras within 1e-4."""
    path = folder / ONNX
    if path.exists():
        return path
    probe = np.random.default_rng(0).integers(0, 256, (8, *INPUT_SHAPE[:2]), np.uint8)
    keras_probs = KerasBackend(model).predict(probe)
    partial = folder / f".{ONNX}.{os.getpid()}"
    model.export(str(partial), format="onnx", verbose=False)
    difference = float(np.abs(OnnxBackend(partial).predict(probe) - keras_probs).max())
    if difference > ONNX_TOLERANCE:
        partial.unlink()
        raise UserError(f"ONNX conversion of {folder} differs from Keras by {difference:.2g}; use --backend keras")
    partial.rename(path)
    log.info("converted to ONNX (max difference to Keras %.1g) -> %s", difference, path)
    return path


INT8_BACKENDS = {"litert-int8": (INT8_TFLITE, LiteRTBackend), "onnx-int8": (INT8, OnnxBackend)}  # auto's order


def load_backend(folder: str | Path, name: str = "auto", test_time: str = "model") -> Backend:
    """The named backend for the model in folder, labelling from the model's own test-time views (or those named).

    'auto' picks the fastest available: an int8 model when folder holds one (made and checked with
    `python -m realtime.quantize`; TFLite on LiteRT before ONNX), else ONNX Runtime when installed, else Keras.
    """
    folder = Path(folder)
    backend = _backend(folder, name)
    backend.test_time = views.chosen(folder, test_time)
    return backend


def _backend(folder: Path, name: str) -> Backend:
    if name not in BACKENDS:
        raise UserError(f"backend {name!r}: use one of {', '.join(BACKENDS)}")
    for int8_name, (file, backend_class) in INT8_BACKENDS.items():
        if name == int8_name or (name == "auto" and (folder / file).exists()):
            if not (folder / file).exists():
                raise UserError(f"{folder} has no {file}: make it with python -m realtime.quantize {folder} (needs the "
                                "index of the training data), or use --backend onnx")
            backend = backend_class(folder / file)
            backend.name = int8_name
            return backend
    if name in ("auto", "onnx") and (folder / ONNX).exists():
        return OnnxBackend(folder / ONNX)  # converted and checked against Keras before
    from emotion.tracking.model_io import load_model_files  # Keras, only for a model without its ONNX form yet

    model = load_model_files(folder)
    if name == "keras":
        return KerasBackend(model)
    try:
        return OnnxBackend(export_onnx(model, folder))
    except ImportError as err:
        if name == "onnx":
            raise UserError(f"--backend onnx needs onnxruntime and tf2onnx ({err}); run bash scripts/setup.sh") from err
        log.info("onnxruntime not available (%s); using Keras", err)
        return KerasBackend(model)
