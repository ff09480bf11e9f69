"""int8 models by static quantization, calibrated on training faces: TFLite for LiteRT and ONNX for ONNX Runtime.

`python -m realtime.quantize MODEL_DIR [--index-dir data/index]` writes MODEL_DIR/model.int8.tflite (which
`--backend litert-int8` uses, and `auto` prefers) and MODEL_DIR/model.int8.onnx (`--backend onnx-int8`). Check their
test accuracy against the float model with `python -m bench.quantized_accuracy MODEL_DIR` before shipping them.
"""

import argparse

from emotion.errors import user_errors_exit
from realtime import options


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m realtime.quantize", description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--index-dir", default="data/index", help="index whose training faces calibrate")
    parser.add_argument("--count", type=int, default=512, help="calibration faces")
    args = parser.parse_args(argv)
    options.setup_logging()
    from emotion.inference.quantization import calibration_faces, quantize  # after parsing: a fast --help
    from emotion.tracking.model_files import check_model_folder

    check_model_folder(args.model_dir)  # before the faces are read: say what is missing first
    quantize(args.model_dir, calibration_faces(args.index_dir, args.count))


if __name__ == "__main__":
    main()
