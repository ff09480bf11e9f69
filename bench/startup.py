"""Start-up cost of the realtime CLI, as whole processes: `--help`, and one face photo labelled from a model folder
that holds its int8 models (LiteRT alone, as --backend auto picks), against the same with --backend keras
(TensorFlow imported).

Median wall time and peak resident memory over several runs of each.
Run: python -m bench.startup [--model-dir models/<name>] [--runs 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import skimage.data

from emotion.project_files import default_model_dir

ROOT = Path(__file__).resolve().parents[1]


def run_once(command: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MiB) of one process, which must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=default_model_dir(), help="a model folder holding model.int8.onnx "
                        "(default: the shipped model)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "face.png"
        cv2.imwrite(str(image), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
        label = [sys.executable, "-m", "realtime.webcam", "--model-dir", str(Path(args.model_dir).resolve()),
                 "--image", str(image), "--headless", "--json"]
        cases = {
            "--help": [sys.executable, "-m", "realtime.webcam", "--help"],
            "--image, int8 model (LiteRT)": label,
            "--image, --backend keras": [*label, "--backend", "keras"],
        }
        for name, command in cases.items():
            seconds, mib = zip(*(run_once(command) for _ in range(args.runs)))
            print(f"{name:>36}: {statistics.median(seconds):5.2f} s median (min {min(seconds):.2f}, max "
                  f"{max(seconds):.2f}), {statistics.median(mib):4.0f} MiB peak, {args.runs} runs")


if __name__ == "__main__":
    main()
