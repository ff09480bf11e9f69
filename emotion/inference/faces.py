"""Face boxes in a frame with OpenCV's Haar cascade, detected on a downscaled copy for speed."""

import cv2
import numpy as np

from emotion.config import RealtimeConfig
from emotion.errors import UserError

CASCADE = "haarcascade_frontalface_default.xml"


class FaceDetector:
    """Finds frontal faces; boxes are (x, y, w, h) in the coordinates of the frame given."""

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

    def detect(self, gray_u8: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes of the faces in a grayscale frame, largest first."""
        height, width = gray_u8.shape
        scale = min(1.0, self.cfg.detect_width / width)
        small = cv2.resize(gray_u8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray_u8
        min_px = max(24, round(self.cfg.min_face_fraction * min(small.shape)))
        found = self.cascade.detectMultiScale(
            small, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors, minSize=(min_px, min_px)
        )
        boxes = [tuple(int(round(v / scale)) for v in box) for box in found]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)
