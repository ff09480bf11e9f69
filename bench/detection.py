"""Face detectors compared on frames that look like cameras and photos: real FER2013 test faces pasted at random sizes
and places into 640x480 frames, for each setting the share of faces found (a box overlapping a pasted face by IoU
>= 0.3), the boxes that are no pasted face, and the detector's CPU time per frame on one thread; then the emotion
accuracy on the faces that the default and Haar both find, each cropped from its own detector's box.

Scenes (a quarter of the frames each): one face on a plain grey background (the first benchmark's frames); one face
in a busy colour scene (scikit-image's sample photos as backgrounds); the same scene in grey; a group photo (four
faces, 10-30 % of the height, in a busy colour scene).

Run: python -m bench.detection [--index-dir data/index] [--frames 400] [--json] [SETTING ...]
A setting is realtime.* values over conf's, space-separated: "detector=haar min_neighbors=3", "blazeface_sizes=[128]"
(default: a fixed grid of both detectors' settings). `--calibrate` pastes training faces instead and prints the
box_scale and box_shift that map the default detector's boxes onto the pasted faces (FER2013's framing).
`--alignment` pastes the faces turned by -30 to 30 degrees (one per busy colour scene) and compares the accuracy on
the faces found with and without realtime.align (crops turned so that the eyes are level).
"""

import argparse
import dataclasses
import json
import time

import cv2
import numpy as np
import pandas as pd
import skimage.data

from emotion.config import RealtimeConfig
from emotion.data import dataset
from emotion.data.preprocess import crop_face
from emotion.inference.backends import load_backend
from emotion.inference.faces import face_detector
from emotion.project_files import DEFAULT_MODEL, project_path
from stages.composition import load_config

GRID = ("", "verify_score=0", "blazeface_sizes=[128]", "blazeface_sizes=[128,192]", "blazeface_sizes=[128,320]",
        "blazeface_sizes=[128,256,384]", "blazeface_model=full_range blazeface_sizes=[192]", "detector=haar",
        "detector=haar min_neighbors=3", "detector=haar detect_width=240 min_neighbors=3")
BACKGROUNDS = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass",
               "gravel", "coins", "clock", "moon")  # scikit-image's sample images without a face
ANGLES = (-30, -15, 0, 15, 30)  # --alignment: pasted faces turned by these (degrees, counter-clockwise)
SINGLE, GROUP = (0.15, 0.6), (0.1, 0.3)  # pasted face side as a fraction of the frame's height
Box = tuple[int, int, int, int]


def busy_scene(rng: np.random.Generator) -> np.ndarray:
    """A random crop of a sample photo, 640x480 BGR."""
    image = getattr(skimage.data, BACKGROUNDS[rng.integers(len(BACKGROUNDS))])()
    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    height, width = image.shape[:2]
    side = rng.uniform(0.5, 1.0)
    crop_w, crop_h = int(width * side), int(min(height, width * side * 0.75))
    x, y = rng.integers(0, width - crop_w + 1), rng.integers(0, height - crop_h + 1)
    return cv2.resize(image[y : y + crop_h, x : x + crop_w], (640, 480), interpolation=cv2.INTER_AREA)


def plain_scene(rng: np.random.Generator) -> np.ndarray:
    """A smooth random grey background, 640x480."""
    return cv2.resize(rng.integers(0, 256, (6, 8), np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)


def paste(frame: np.ndarray, faces_u8: np.ndarray, sizes: tuple[float, float], rng) -> list[Box] | None:
    """Paste the faces (upscaled) at random non-overlapping places; their boxes, or None when they do not fit."""
    boxes: list[Box] = []
    for face in faces_u8:
        side = int(rng.uniform(*sizes) * 480)
        for _ in range(50):
            x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
            if all(iou((x, y, side, side), b) == 0 for b in boxes):
                break
        else:
            return None
        big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        frame[y : y + side, x : x + side] = big if frame.ndim == 2 else big[..., None]
        boxes.append((x, y, side, side))
    return boxes


def scenes(faces_u8: np.ndarray, labels: np.ndarray, count: int, seed: int) -> list[tuple[str, np.ndarray, list]]:
    """(scene kind, frame, [(box, label), ...]) for count frames, a quarter of each kind."""
    rng = np.random.default_rng(seed)
    out = []
    picks = iter(rng.permutation(len(faces_u8)))
    for i in range(count):
        kind = ("plain grey", "busy colour", "busy grey", "group colour")[i % 4]
        while True:
            chosen = [next(picks) for _ in range(4 if kind == "group colour" else 1)]
            frame = plain_scene(rng) if kind == "plain grey" else busy_scene(rng)
            boxes = paste(frame, faces_u8[chosen], GROUP if kind == "group colour" else SINGLE, rng)
            if boxes is not None:
                break
        if kind == "busy grey":
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        out.append((kind, frame, list(zip(boxes, labels[chosen]))))
    return out


def turned(faces_u8: np.ndarray, angle: float) -> np.ndarray:
    """The faces turned by angle degrees (counter-clockwise) about their centre, edges repeated."""
    matrix = cv2.getRotationMatrix2D((faces_u8.shape[2] / 2, faces_u8.shape[1] / 2), angle, 1.0)
    return np.stack([cv2.warpAffine(face, matrix, face.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
                     for face in faces_u8])


def alignment(faces_u8: np.ndarray, labels: np.ndarray, count: int, seed: int, backend) -> pd.DataFrame:
    """Per angle: faces found by the default detector, and accuracy on them with realtime.align off and on."""
    rng, rows = np.random.default_rng(seed), {}
    picks = rng.permutation(len(faces_u8))[:count]
    for angle in ANGLES:
        frames = []
        for i in picks:
            frame = busy_scene(rng)
            boxes = paste(frame, turned(faces_u8[i : i + 1], angle), SINGLE, rng)
            frames.append(("busy colour", frame, [(boxes[0], labels[i])]))
        found, matches = measure(setting("align=true"), frames)  # align changes the crops' angle, not the boxes
        upright = [None if face is None else dataclasses.replace(face, angle=0.0) for face in matches]
        table = accuracy(frames, {"align=false": upright, "align=true": matches}, backend)
        rows[f"{angle:+d} degrees"] = {"faces found %": 100 * found["found"]} | {
            f"accuracy %, {name}": table.loc[name, "accuracy %"] for name in ("align=false", "align=true")}
    return pd.DataFrame(rows).T


def iou(a: Box, b: Box) -> float:
    width = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    height = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def setting(text: str) -> RealtimeConfig:
    """realtime.* values over conf's ('' = conf's own), composed as the applications compose them."""
    return load_config([f"realtime.{value}" for value in text.split()]).realtime


def measure(cfg: RealtimeConfig, frames: list) -> tuple[dict, list]:
    """The row's figures, and for every pasted face the detected face that matches it (or None)."""
    detector = face_detector(cfg)
    detect = [None] * len(frames)
    start = time.process_time()
    for i, (_, frame, _) in enumerate(frames):
        detect[i] = detector.detect(frame)
    cpu_ms = (time.process_time() - start) / len(frames) * 1000
    matches, extra, found_by_kind = [], 0, {}
    for (kind, _, truth), faces in zip(frames, detect):
        used = set()
        for box, _ in truth:
            hit = next((j for j, face in enumerate(faces) if j not in used and iou(face.box, box) >= 0.3), None)
            used.add(hit)
            matches.append(None if hit is None else faces[hit])
            found_by_kind.setdefault(kind, []).append(hit is not None)
        extra += len(faces) - len(used - {None})
    row = {"found": float(np.mean([m is not None for m in matches])), "other_boxes_per_frame": extra / len(frames),
           "cpu_ms": cpu_ms} | {f"found: {kind}": float(np.mean(hits)) for kind, hits in found_by_kind.items()}
    return row, matches


def accuracy(frames: list, matches: dict[str, list], backend) -> pd.DataFrame:
    """Emotion accuracy on the faces every listed setting finds, cropped from each one's boxes and from the pasted
    box itself (FER2013's own framing)."""
    truth = [(frame, box, label) for _, frame, faces in frames for box, label in faces]
    both = [i for i in range(len(truth)) if all(m[i] is not None for m in matches.values())]
    gray = lambda frame: frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)  # noqa: E731
    labels = np.array([truth[i][2] for i in both])
    crops = {"pasted box (FER2013's framing)": [crop_face(gray(truth[i][0]), truth[i][1]) for i in both]}
    crops |= {name: [crop_face(gray(truth[i][0]), m[i].box, m[i].angle) for i in both] for name, m in matches.items()}
    rows = {name: {"faces": len(both), "accuracy %": 100 * float(np.mean(backend.predict(np.stack(c)).argmax(1)
                                                                         == labels))}
            for name, c in crops.items()}
    return pd.DataFrame(rows).T


def calibration(frames: list, matches: list) -> dict:
    """box_scale and box_shift that move the matched boxes (made with scale 1, shift 0) onto the pasted ones."""
    pairs = [(truth, found.box) for (truth, _), found in zip([p for f in frames for p in f[2]], matches) if found]
    scale = np.median([truth[2] / found[2] for truth, found in pairs])
    shift = np.median([((truth[1] + truth[3] / 2) - (found[1] + found[3] / 2)) / found[3] for truth, found in pairs])
    shift_x = np.median([((truth[0] + truth[2] / 2) - (found[0] + found[2] / 2)) / found[2] for truth, found in pairs])
    return {"faces": len(pairs), "box_scale": round(float(scale), 3), "box_shift": round(float(shift), 3),
            "sideways shift (expected ~0)": round(float(shift_x), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="*", help="realtime.* settings to compare (default: a fixed grid)")
    parser.add_argument("--index-dir", default="data/index", help="index whose test faces are pasted")
    parser.add_argument("--frames", type=int, default=400, help="frames per setting (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", default=str(project_path("models") / DEFAULT_MODEL),
                        help="model whose accuracy on the found faces is compared (default: the shipped one)")
    parser.add_argument("--split", default="test", choices=["train", "test"],
                        help="faces to paste: test (default), or train to choose settings without the test faces")
    parser.add_argument("--calibrate", action="store_true", help="fit box_scale and box_shift on training faces")
    parser.add_argument("--alignment", action="store_true", help="accuracy on turned faces, realtime.align off/on")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON object")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # CPU time of one detection, as each of the server's threads spends it
    split = "train" if args.calibrate else args.split
    faces_u8, labels = dataset.load_cache(args.index_dir, splits=(split,))[split]
    if args.alignment:
        print(f"{args.frames} {split} faces per angle, each in a busy colour scene; accuracy of {args.model_dir} on "
              "the faces found, cropped upright (align=false) or turned so the eyes are level (align=true)")
        print(alignment(faces_u8, labels, args.frames, args.seed, load_backend(args.model_dir)).round(2).to_markdown())
        return
    frames = scenes(faces_u8, labels, args.frames, args.seed)
    if args.calibrate:
        row, matches = measure(setting("box_scale=1.0 box_shift=0.0 align=false"), frames)
        print(json.dumps(calibration(frames, matches) | {"found": round(row["found"], 3)}))
        return
    texts = args.settings or list(GRID)
    rows, matches = {}, {}
    for text in texts:
        rows[text or "conf defaults"], matches[text or "conf defaults"] = measure(setting(text), frames)
    table = pd.DataFrame(rows).T
    if args.json:
        print(json.dumps({"rows": [{"setting": name, "default": name == "conf defaults", **row}
                                   for name, row in rows.items()]}))
        return
    defaults = dataclasses.asdict(setting(""))
    print(f"{len(frames)} frames 640x480 ({split} faces of {args.index_dir}), CPU time on one thread; conf defaults: "
          + " ".join(f"{key}={defaults[key]}" for key in ("detector", "blazeface_model", "blazeface_sizes", "min_score",
                                                          "box_scale", "box_shift")))
    print(table.round(3).to_markdown())
    compared = {name: matches[name] for name in ("conf defaults", "detector=haar") if name in matches}
    if len(compared) == 2:
        backend = load_backend(args.model_dir)
        print(f"\nemotion accuracy on the faces both find, each cropped from its own box ({args.model_dir}, "
              f"{backend.name}):")
        print(accuracy(frames, compared, backend).round(2).to_markdown())


if __name__ == "__main__":
    main()
