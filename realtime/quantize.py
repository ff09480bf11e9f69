"""int8 models by static quantization, calibrated on training faces: TFLite for LiteRT and ONNX for ONNX Runtime.

`python -m realtime.quantize MODEL_DIR [--index-dir data/index]` writes MODEL_DIR/model.int8.tflite (which
`--backend litert-int8` uses, and `auto` prefers) and MODEL_DIR/model.int8.onnx (`--backend onnx-int8`). Check their
test accuracy against the float model with `python -m bench.quantized_accuracy MODEL_DIR` before shipping them.
"""

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

from emotion.data import dataset
from emotion.data.preprocess import to_model_input
from emotion.inference.backends import export_onnx
from emotion.tracking.model_files import INT8, INT8_TFLITE
from emotion.tracking.model_io import load_model_files

log = logging.getLogger(__name__)


def quantize(folder: str | Path, calibration_u8: np.ndarray) -> tuple[Path, Path]:
    """Write both int8 models of the folder, calibrated on the same faces."""
    return quantize_tflite(folder, calibration_u8), quantize_onnx(folder, calibration_u8)


def quantize_tflite(folder: str | Path, calibration_u8: np.ndarray) -> Path:
    """Write folder/model.int8.tflite: full int8 (per-channel weights, int8 activations, float input and output)
    calibrated on the faces. It ends in the logits; LiteRTBackend applies the softmax in float."""
    import keras
    import tensorflow as tf

    folder = Path(folder)
    model = load_model_files(folder)
    head = model.layers[-1]  # Dense(softmax): the same weights without the activation give the logits
    logits = keras.Model(model.inputs, keras.layers.Dense(head.units, name="logits")(head.input))
    logits.layers[-1].set_weights(head.get_weights())
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


def quantize_onnx(folder: str | Path, calibration_u8: np.ndarray) -> Path:
    """Write folder/model.int8.onnx: QDQ int8 (per-channel weights, uint8 activations) calibrated on the faces."""
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = Path(folder)
    fp32 = export_onnx(load_model_files(folder), folder)

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
        # the softmax stays float: 8-bit probabilities would no longer sum to 1
        softmax = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Softmax"]
        quantize_static(
            str(prepared), str(folder / INT8), Faces(input_name), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=softmax,
        )
    log.info("int8 ONNX model calibrated on %d faces -> %s", len(calibration_u8), folder / INT8)
    return folder / INT8


def calibration_faces(index_dir: str | Path, count: int = 512, seed: int = 0) -> np.ndarray:
    """A seeded random sample of training faces (never test faces) for calibration."""
    faces_u8, _ = dataset.load_cache(index_dir, splits=("train",))["train"]
    return faces_u8[np.random.default_rng(seed).permutation(len(faces_u8))[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m realtime.quantize", description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--index-dir", default="data/index", help="index whose training faces calibrate")
    parser.add_argument("--count", type=int, default=512, help="calibration faces")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quantize(args.model_dir, calibration_faces(args.index_dir, args.count))


if __name__ == "__main__":
    main()
