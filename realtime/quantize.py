"""int8 ONNX model by static quantization, calibrated on training faces (fast on CPUs with AVX-512 VNNI).

`python -m realtime.quantize MODEL_DIR [--index-dir data/index]` writes MODEL_DIR/model.int8.onnx, which
`--backend onnx-int8` uses. Check its test accuracy against the float model with bench/quantized_accuracy.py before shipping it.
"""

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

from emotion import data
from emotion.inference.backends import export_onnx
from emotion.model_io import INT8, load_model_files
from emotion.preprocess import to_model_input

log = logging.getLogger(__name__)


def quantize(folder: str | Path, calibration_u8: np.ndarray) -> Path:
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
    log.info("int8 model calibrated on %d faces -> %s", len(calibration_u8), folder / INT8)
    return folder / INT8


def calibration_faces(index_dir: str | Path, count: int = 512, seed: int = 0) -> np.ndarray:
    """A seeded random sample of training faces (never test faces) for calibration."""
    faces_u8, _ = data.load_cache(index_dir, splits=("train",))["train"]
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
