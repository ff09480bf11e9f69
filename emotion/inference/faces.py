"""Face boxes in a frame, by the detector realtime.detector names: BlazeFace (the default; small, turned and many
faces) or OpenCV's Haar cascade (the original recipe's). Every box is the crop the classifier sees, framed as
FER2013 framed its faces."""

import math
from dataclasses import dataclass

import cv2
import numpy as np

from emotion.config import RealtimeConfig
from emotion.errors import UserError

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels: the crop
    angle: float = 0.0  # degrees to turn the crop by so that the eyes are level (realtime.align; 0: upright)


class HaarDetector:
    """Frontal faces by OpenCV's Haar cascade, detected on a copy realtime.detect_width pixels wide."""

    def __init__(self, cfg: RealtimeConfig):
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise UserError(
                f"this OpenCV ({cv2.__version__}) has no Haar cascades (OpenCV 5 dropped them): install "
                "opencv-python-headless==4.14.0.94 (bash scripts/setup.sh does)"
            )
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if self.cascade.empty():
            raise UserError(f"cannot load {CASCADE} from {cv2.data.haarcascades}; reinstall opencv-python-headless")
        self.cfg = cfg

    def detect(self, frame: np.ndarray) -> list[Face]:
        """The faces in a BGR or grey frame, largest first."""
        height, width = frame.shape[:2]
        scale = min(1.0, self.cfg.detect_width / width)
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        min_px = max(24, round(self.cfg.min_face_fraction * min(small.shape)))
        found = self.cascade.detectMultiScale(
            small, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors, minSize=(min_px, min_px)
        )
        boxes = [tuple(int(round(v / scale)) for v in box) for box in found]
        return [Face(box) for box in sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)]


class BlazeFaceDetector:
    """MediaPipe's BlazeFace over the whole frame at each of realtime.blazeface_sizes; its square boxes are scaled and
    moved by realtime.box_scale and box_shift onto the face as FER2013 framed it (calibrated by bench.detection)."""

    def __init__(self, cfg: RealtimeConfig):
        from emotion.inference.blazeface import BlazeFace

        self.cfg = cfg
        self.model = BlazeFace(cfg.blazeface_model, cfg.min_score, cfg.verify_score, tuple(cfg.blazeface_sizes),
                               cfg.sure_score, folder=cfg.blazeface_dir)

    def detect(self, frame: np.ndarray) -> list[Face]:
        """The faces in a BGR or grey frame, largest first."""
        faces = []
        for found in self.model.detect(frame):
            (x0, y0), (x1, y1) = found.box[:2], found.box[2:]
            side = (x1 - x0 + y1 - y0) / 2
            crop = side * self.cfg.box_scale
            centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2 + self.cfg.box_shift * side
            box = tuple(int(round(v)) for v in (centre_x - crop / 2, centre_y - crop / 2, crop, crop))
            angle = eye_angle(found.keypoints) if self.cfg.align else 0.0
            faces.append(Face(box, angle if abs(angle) >= self.cfg.align_min_deg else 0.0))
        return sorted(faces, key=lambda face: face.box[2], reverse=True)


def eye_angle(keypoints: np.ndarray) -> float:
    """Degrees from the level of the line from the right eye (image left) to the left eye; keypoints as BlazeFace's."""
    (right_x, right_y), (left_x, left_y) = keypoints[0], keypoints[1]
    return math.degrees(math.atan2(left_y - right_y, left_x - right_x))


DETECTORS = {"blazeface": BlazeFaceDetector, "haar": HaarDetector}


def face_detector(cfg: RealtimeConfig):
    """The detector realtime.detector names."""
    return DETECTORS[cfg.detector](cfg)
