"""Draw frame records: a box, label and confidence per face, small probability bars, and the frame rate."""

import cv2
import numpy as np

from emotion.inference.recognizer import FrameResult
from emotion.labels import CLASS_NAMES

GREEN, WHITE, DARK = (80, 200, 80), (255, 255, 255), (40, 40, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw(frame_bgr: np.ndarray, result: FrameResult, fps: float | None = None) -> np.ndarray:
    """Annotate the frame in place and return it."""
    for face in result.faces:
        x, y, w, h = face.box
        cv2.rectangle(frame_bgr, (x, y), (x + w, y + h), GREEN, 2)
        cv2.putText(frame_bgr, f"{face.label} {face.confidence:.0%}", (x, max(y - 8, 12)), FONT, 0.6, GREEN, 2)
        _bars(frame_bgr, face.probs, x + w + 6, y)
    if fps is not None:
        cv2.putText(frame_bgr, f"{fps:.0f} FPS", (8, 20), FONT, 0.6, WHITE, 2)
    return frame_bgr


def _bars(frame_bgr: np.ndarray, probs: dict[str, float], left: int, top: int, width: int = 70) -> None:
    """One bar per class, beside the face (moved inside the frame when there is no room)."""
    left = min(left, frame_bgr.shape[1] - width - 62)
    for i, name in enumerate(CLASS_NAMES):
        y = top + 12 * i
        cv2.rectangle(frame_bgr, (left + 60, y), (left + 60 + width, y + 9), DARK, -1)
        cv2.rectangle(frame_bgr, (left + 60, y), (left + 60 + int(width * probs[name]), y + 9), GREEN, -1)
        cv2.putText(frame_bgr, name, (left, y + 9), FONT, 0.35, WHITE, 1)
