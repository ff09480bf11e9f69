"""Frames -> records: detect faces, crop them as in training, classify all faces of a frame in one batch."""

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from emotion.inference.faces import FaceDetector
from emotion.labels import CLASS_NAMES
from emotion.preprocess import crop_face


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    label: str
    confidence: float
    probs: dict[str, float]  # all classes, in CLASS_NAMES order


@dataclass
class FrameResult:
    index: int
    time_s: float
    faces: list[FaceResult]

    def to_dict(self) -> dict:
        return asdict(self)


class Recognizer:
    """Labels the faces of successive frames; the detector runs every `detect_every` frames, boxes carry over."""

    def __init__(self, detector: FaceDetector, backend, detect_every: int = 1):
        self.detector, self.backend, self.detect_every = detector, backend, detect_every
        self.boxes: list[tuple[int, int, int, int]] = []

    def __call__(self, frame_bgr: np.ndarray, index: int, time_s: float) -> FrameResult:
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
        if index % self.detect_every == 0:
            self.boxes = self.detector.detect(gray)
        if not self.boxes:
            return FrameResult(index, time_s, [])
        probs = self.backend.predict(np.stack([crop_face(gray, box) for box in self.boxes]))
        return FrameResult(index, time_s, [face_result(box, p) for box, p in zip(self.boxes, probs)])


def face_result(box: tuple[int, int, int, int], probs: np.ndarray) -> FaceResult:
    best = int(np.argmax(probs))
    return FaceResult(
        box=tuple(int(v) for v in box),
        label=CLASS_NAMES[best],
        confidence=round(float(probs[best]), 4),
        probs={name: round(float(p), 4) for name, p in zip(CLASS_NAMES, probs)},
    )
