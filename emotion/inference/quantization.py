"""int8 models by static quantization, calibrated on training faces: TFLite for LiteRT and ONNX for ONNX Runtime.

TensorFlow is imported only for the TFLite model; the ONNX one needs Keras only when the folder lacks model.onnx.
"""

import logging
import tempfile
from pathlib import Path

import numpy as np

from emotion.data import dataset
from emotion.data.preprocess import to_model_input
from emotion.errors import first_line
from emotion.inference.backends import export_onnx
from emotion.tracking.model_files import INT8, INT8_TFLITE, ONNX
from emotion.tracking.model_io import load_model_files

log = logging.getLogger(__name__)
PROBABILITY_FLOOR = 1e-7  # log(0) would be -inf: an ensemble's logits are the log of at least this


def add_onnx_models(model, folder: str | Path, training_faces: np.ndarray | None = None) -> None:
    """Write the Keras model's model.onnx into folder (as the backends make it), and model.int8.onnx calibrated on a
    sample of training_faces when given; neither where Keras cannot export ONNX on its backend (JAX without
    jax2onnx), which is logged: such a folder converts when first loaded on TensorFlow."""
    try:
        export_onnx(model, Path(folder))
    except ImportError as err:
        log.warning("no ONNX models beside %s: Keras cannot export them here (%s)", folder, first_line(err))
        return
    if training_faces is not None:
        quantize_onnx(folder, calibration_sample(training_faces))


def quantize(folder: str | Path, calibration_u8: np.ndarray) -> tuple[Path, Path]:
    """Write both int8 models of the folder, calibrated on the same faces."""
    return quantize_tflite(folder, calibration_u8), quantize_onnx(folder, calibration_u8)


def quantize_tflite(folder: str | Path, calibration_u8: np.ndarray) -> Path:
    """Write folder/model.int8.tflite: full int8 (per-channel weights, int8 activations, float input and output)
    calibrated on the faces. It ends in the logits; LiteRTBackend applies the softmax in float."""
    import tensorflow as tf

    folder = Path(folder)
    logits = logits_model(load_model_files(folder))
    with tempfile.TemporaryDirectory() as tmp:
        logits.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([to_model_input(face[np.newaxis])] for face in calibration_u8)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converted = converter.convert()  # reads the saved model only now
    partial = folder / f".{INT8_TFLITE}.partial"
    partial.write_bytes(converted)
    partial.rename(folder / INT8_TFLITE)
    log.info("int8 TFLite model calibrated on %d faces -> %s", len(calibration_u8), folder / INT8_TFLITE)
    return folder / INT8_TFLITE


def logits_model(model):
    """The model ending in logits, which softmax turns back into its probabilities: a Dense(softmax) head without its
    activation (the same weights), else (an ensemble's mean of its members' probabilities) their logarithm."""
    import keras

    head = model.layers[-1]
    if isinstance(head, keras.layers.Dense):
        logits = keras.Model(model.inputs, keras.layers.Dense(head.units, name="logits")(head.input))
        logits.layers[-1].set_weights(head.get_weights())
        return logits
    return keras.Model(model.inputs, keras.layers.Lambda(
        lambda probs: keras.ops.log(keras.ops.maximum(probs, PROBABILITY_FLOOR)), name="logits")(model.outputs[0]))


def quantize_onnx(folder: str | Path, calibration_u8: np.ndarray) -> Path:
    """Write folder/model.int8.onnx: QDQ int8 (per-channel weights, uint8 activations) calibrated on the faces."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = Path(folder)
    fp32 = folder / ONNX if (folder / ONNX).exists() else export_onnx(load_model_files(folder), folder)

    class Faces(CalibrationDataReader):
        def __init__(self, input_name: str):
            self.batches = iter(np.array_split(to_model_input(calibration_u8), max(1, len(calibration_u8) // 32)))
            self.input_name = input_name

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {self.input_name: batch}

    input_name = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        # the softmax, and an ensemble's mean of its members' probabilities, stay float: 8-bit probabilities would
        # no longer sum to 1
        softmax = from_softmax_on(onnx.load(str(prepared)).graph)
        quantize_static(
            str(prepared), str(folder / INT8), Faces(input_name), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=softmax,
        )
    log.info("int8 ONNX model calibrated on %d faces -> %s", len(calibration_u8), folder / INT8)
    return folder / INT8


def from_softmax_on(graph) -> list[str]:
    """The names of the graph's Softmax nodes and of every node that reads what they give (nodes in order)."""
    names, tainted = [], set()
    for node in graph.node:
        if node.op_type == "Softmax" or tainted.intersection(node.input):
            names.append(node.name)
            tainted.update(node.output)
    return names


def calibration_faces(index_dir: str | Path, count: int = 512, seed: int = 0) -> np.ndarray:
    """A seeded random sample of the index's training faces (never test faces) for calibration."""
    return calibration_sample(dataset.load_cache(index_dir, splits=("train",))["train"][0], count, seed)


def calibration_sample(faces_u8: np.ndarray, count: int = 512, seed: int = 0) -> np.ndarray:
    """A seeded random sample of these (training) faces."""
    return faces_u8[np.random.default_rng(seed).permutation(len(faces_u8))[:count]]
