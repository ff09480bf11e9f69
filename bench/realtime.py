"""Realtime speed on a 640x480 video with one face: detection, preprocessing, model per face, end-to-end FPS.

Compares, in one run, the naive per-face `model.predict` with each inference backend (Keras eager call, ONNX
Runtime). Run: python -m bench.realtime (or python bench/realtime.py) [--model-dir models/reference] [--frames 150]
     [--int8-index-dir data/index] [--json]
Without --model-dir it times an untrained reference model (speed does not depend on the weights).
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python bench/realtime.py`: this file would shadow the realtime package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import cv2
import numpy as np
import skimage.data

from emotion.config import Config
from emotion.inference.backends import KerasBackend, OnnxBackend, export_onnx
from emotion.inference.faces import FaceDetector
from emotion.inference.recognizer import EmotionRecognizer
from emotion.model import build_model
from emotion.model_io import load_model_files, save_model_files
from emotion.preprocess import crop_face, to_model_input
from realtime import overlay
from realtime.quantize import calibration_faces, quantize


def face_video(path: Path, frames: int) -> None:
    """scikit-image's astronaut on a 640x480 frame, drifting sideways."""
    face = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (400, 400))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for i in range(frames):
        frame = np.full((480, 640, 3), 90, np.uint8)
        left = 40 + (i * 3) % 160
        frame[40:440, left : left + 400] = face
        writer.write(frame)
    writer.release()


def timed(fn, repeats: int, warmup: int = 5) -> np.ndarray:
    """Milliseconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def stats(ms: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p95": round(float(np.percentile(ms, 95)), 3)}


def read_frames(path: Path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    return frames


def end_to_end_fps(path: Path, recognizer: EmotionRecognizer) -> float:
    """Decode, detect, classify and draw every frame of the video; frames per second."""
    capture = cv2.VideoCapture(str(path))
    start, count = time.perf_counter(), 0
    while (frame := capture.read()[1]) is not None:
        overlay.draw(frame, recognizer.label_frame(frame, count, count / 30))
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="folder with model.json + model.weights.h5 (default: untrained reference)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per backend")
    parser.add_argument("--int8-index-dir", help="also time the int8 model, calibrated on this index's train faces "
                        "(e.g. data/index)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    cfg = Config()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"  # a copy, so the ONNX conversion lands in tmp
        if args.model_dir:
            shutil.copytree(args.model_dir, folder)
        else:
            save_model_files(build_model(cfg.model), folder)
        keras_backend = KerasBackend(load_model_files(folder))
        backends = {"keras": keras_backend, "onnx": OnnxBackend(export_onnx(keras_backend.model, folder))}
        if args.int8_index_dir:
            backends["onnx-int8"] = OnnxBackend(quantize(folder, calibration_faces(args.int8_index_dir)))
        video = Path(tmp) / "face.avi"
        face_video(video, args.frames)
        frames = read_frames(video)
        grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        detector = FaceDetector(cfg.realtime)
        box = detector.detect(grays[0])[0]
        cycle = iter(range(10**9))

        detect_ms = timed(lambda: detector.detect(grays[next(cycle) % len(grays)]), len(grays))
        full_detect_ms = timed(lambda: detector.cascade.detectMultiScale(
            grays[0], scaleFactor=1.1, minNeighbors=5, minSize=(48, 48)), 20)
        prep_ms = timed(lambda: to_model_input(crop_face(cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY), box)[None]),
                        args.repeats)
        face = crop_face(grays[0], box)[None]
        x = to_model_input(face)
        predict_ms = timed(lambda: keras_backend.model.predict(x, verbose=0), 30)
        model_ms = {name: timed(lambda b=backend: b.predict(face), args.repeats) for name, backend in backends.items()}
        fastest = min(model_ms, key=lambda name: np.median(model_ms[name]))
        fps = {name: end_to_end_fps(video, EmotionRecognizer(backend, cfg.realtime))
               for name, backend in backends.items()}

    figures = {
        "detect_ms": stats(detect_ms),
        "detect_full_frame_ms": stats(full_detect_ms),
        "preprocess_ms": stats(prep_ms),
        "predict_ms": stats(predict_ms),
        **{f"model_ms_{name}": stats(ms) for name, ms in model_ms.items()},
        "fastest_backend": fastest,
        "model_ms_p50": stats(model_ms[fastest])["p50"],
        "predict_ms_p50": stats(predict_ms)["p50"],
        "speedup_vs_predict": round(float(np.median(predict_ms) / np.median(model_ms[fastest])), 1),
        "fps_per_backend": {name: round(v, 1) for name, v in fps.items()},
        "fps": round(fps[fastest], 1),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"detection (320 px wide, every {cfg.realtime.detect_every} frames): p50 {figures['detect_ms']['p50']} ms, "
          f"p95 {figures['detect_ms']['p95']} ms; full 640x480 frame, scale 1.1, min 48 px: "
          f"p50 {figures['detect_full_frame_ms']['p50']} ms")
    print(f"preprocessing per face: p50 {figures['preprocess_ms']['p50']} ms")
    print(f"model per face, model.predict: p50 {figures['predict_ms']['p50']} ms, p95 {figures['predict_ms']['p95']} ms")
    for name in backends:
        s = figures[f"model_ms_{name}"]
        print(f"model per face, {name:>9}: p50 {s['p50']} ms, p95 {s['p95']} ms, end to end {fps[name]:.1f} FPS")
    print(f"fastest: {fastest}, {figures['speedup_vs_predict']}x faster than model.predict; {figures['fps']} FPS")


if __name__ == "__main__":
    main()
