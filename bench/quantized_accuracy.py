"""Test accuracy of a model folder's float model (Keras) against its int8 ONNX model, on the same test faces.

Run: python -m bench.quantized_accuracy MODEL_DIR [--index-dir data/index]   (make the int8 model first with
python -m realtime.quantize MODEL_DIR). Prints both accuracies and the difference in points; ship the int8
model only if it loses at most 0.5 points.
"""

import argparse
from pathlib import Path

from emotion import data, evaluation
from emotion.inference.backends import OnnxBackend
from emotion.model_io import INT8, load_model_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--index-dir", default="data/index")
    args = parser.parse_args()
    faces_u8, label_ids = data.load_cache(args.index_dir, splits=("test",))["test"]
    float_scores = evaluation.score(label_ids, evaluation.predict(load_model_files(args.model_dir), faces_u8).argmax(1))
    int8_probs = OnnxBackend(Path(args.model_dir) / INT8).predict(faces_u8)
    int8_scores = evaluation.score(label_ids, int8_probs.argmax(1))
    print(f"test images: {len(label_ids)}")
    print(f"float32 Keras: accuracy {float_scores.accuracy:.4f}, macro-F1 {float_scores.macro_f1:.4f}")
    print(f"int8 ONNX:     accuracy {int8_scores.accuracy:.4f}, macro-F1 {int8_scores.macro_f1:.4f}")
    print(f"int8 - float32: {100 * (int8_scores.accuracy - float_scores.accuracy):+.2f} accuracy points")


if __name__ == "__main__":
    main()
