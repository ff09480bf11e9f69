"""What a cheaper face-detection setting costs in faces found: real test faces pasted at random sizes and places
into 640x480 frames, then for each setting the share of faces found (a box overlapping the pasted one by IoU >= 0.3),
the boxes that are not a pasted face, and the detector's CPU time per frame on one thread.

Run: python -m bench.detection [--index-dir data/index] [--frames 400] [SETTING ...]
A setting is realtime.* values, comma-separated: scale_factor=1.2,min_face_fraction=0.15 (default: a fixed grid
around conf/realtime's values).
"""

import argparse
import dataclasses
import time

import cv2
import numpy as np
import pandas as pd

from emotion import data
from emotion.config import RealtimeConfig
from emotion.inference.faces import FaceDetector

GRID = ("", "min_neighbors=3", "detect_width=240", "detect_width=240,min_neighbors=3", "scale_factor=1.2",
        "scale_factor=1.2,min_neighbors=3", "min_face_fraction=0.2", "detect_width=240,scale_factor=1.2,min_neighbors=3")
SIZES = (0.15, 0.6)  # pasted face side as a fraction of the frame's height


def frames(faces_u8: np.ndarray, count: int, seed: int) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Grayscale 640x480 frames, each with one test face (upscaled) on a smooth random background, and its box."""
    rng = np.random.default_rng(seed)
    out = []
    for face in faces_u8[rng.choice(len(faces_u8), count, replace=False)]:
        frame = cv2.resize(rng.integers(0, 256, (6, 8), np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
        side = int(rng.uniform(*SIZES) * 480)
        x, y = rng.integers(0, 640 - side), rng.integers(0, 480 - side)
        frame[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        out.append((frame, (int(x), int(y), side, side)))
    return out


def iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    width = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    height = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def setting(text: str) -> RealtimeConfig:
    """realtime.* values over conf's defaults ('' = the defaults)."""
    values = dict(item.split("=") for item in text.split(",") if item)
    fields = {field.name: field.type for field in dataclasses.fields(RealtimeConfig)}
    return RealtimeConfig(**{key: (float if "float" in str(fields[key]) else int)(value) for key, value in
                             values.items()})


def measure(cfg: RealtimeConfig, scenes: list) -> dict:
    detector = FaceDetector(cfg)
    found = extra = 0
    start = time.process_time()
    for frame, box in scenes:
        boxes = detector.detect(frame)
        hit = [b for b in boxes if iou(b, box) >= 0.3]
        found += bool(hit)
        extra += len(boxes) - len(hit)
    cpu_ms = (time.process_time() - start) / len(scenes) * 1000
    return {"faces found %": 100 * found / len(scenes), "other boxes per frame": extra / len(scenes),
            "CPU ms per frame": cpu_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="*", default=list(GRID), help="realtime.* settings to compare")
    parser.add_argument("--index-dir", default="data/index", help="index whose test faces are pasted")
    parser.add_argument("--frames", type=int, default=400, help="frames per setting (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # CPU time of one detection, as each of the server's threads spends it
    faces_u8, _ = data.load_cache(args.index_dir, splits=("test",))["test"]
    scenes = frames(faces_u8, args.frames, args.seed)
    table = pd.DataFrame({text or "conf defaults": measure(setting(text), scenes) for text in args.settings}).T
    print(f"{len(scenes)} frames 640x480, one test face each, side {SIZES[0]:.0%}-{SIZES[1]:.0%} of the height; "
          "defaults: " + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(RealtimeConfig()).items()
                                   if k in ("scale_factor", "min_face_fraction", "detect_width", "min_neighbors")))
    print(table.round(2).to_markdown())


if __name__ == "__main__":
    main()
