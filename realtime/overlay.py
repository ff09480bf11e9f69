"""Draw frame records: a box, label and confidence per face with a probability panel beside it; the frame rate."""

import cv2
import numpy as np

from emotion.data.labels import CLASS_NAMES
from emotion.inference.records import FrameResult

GREEN, WHITE, GREY, DARK = (80, 200, 80), (255, 255, 255), (100, 100, 100), (40, 40, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX
# Sizes in pixels on a 480-pixel frame; they scale with the image's shorter side.
NAME_W, BAR_W, BAR_H, ROW_H, GAP, LABEL_H = 60, 70, 9, 12, 6, 24
MIN_SCALE = 0.4  # below this the class names are no longer readable


def draw(frame_bgr: np.ndarray, result: FrameResult) -> np.ndarray:
    """Annotate the frame in place and return it."""
    scale = ui_scale(frame_bgr.shape)
    thickness = max(1, round(2 * scale))
    for face in result.faces:
        x, y, w, h = face.box
        cv2.rectangle(frame_bgr, (x, y), (x + w, y + h), GREEN, thickness)
        cv2.putText(frame_bgr, f"{face.label} {face.confidence:.0%}", (x, max(y - round(8 * scale), round(12 * scale))),
                    FONT, 0.6 * scale, GREEN, thickness)
        _bars(frame_bgr, face.probs, panel_box(frame_bgr.shape, face.box), scale)
    return frame_bgr


def draw_fps(frame_bgr: np.ndarray, fps: float) -> np.ndarray:
    """Write the frame rate in the top-left corner, in place (for the live window, not for saved outputs)."""
    scale = ui_scale(frame_bgr.shape)
    cv2.putText(frame_bgr, f"{fps:.0f} FPS", (round(8 * scale), round(20 * scale)), FONT, 0.6 * scale, WHITE,
                max(1, round(2 * scale)))
    return frame_bgr


def ui_scale(shape: tuple[int, ...]) -> float:
    """1 on a 640x480 frame, proportional to the shorter side; small enough that the panel fits the image."""
    height, width = shape[:2]
    return min(max(min(height, width) / 480, MIN_SCALE), width / (NAME_W + BAR_W), height / (ROW_H * len(CLASS_NAMES)))


def panel_size(scale: float) -> tuple[int, int]:
    """Width and height in pixels of the probability panel: a row per class, its name then its bar (rounded down,
    so that it fits wherever ui_scale says it does)."""
    return int(NAME_W * scale) + int(BAR_W * scale), int(ROW_H * scale) * len(CLASS_NAMES)


def panel_box(shape: tuple[int, ...], face_box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a face's probability panel, always inside the image: right of the face, else left of it, else
    below or above it; where none has room (the face fills the image), over the face's right side."""
    height, width = shape[:2]
    scale = ui_scale(shape)
    panel_w, panel_h = panel_size(scale)
    x, y, w, h = face_box
    gap = round(GAP * scale)
    side_y = int(np.clip(y, 0, height - panel_h))
    under_x = int(np.clip(x, 0, width - panel_w))
    candidates = [(x + w + gap, side_y), (x - gap - panel_w, side_y), (under_x, y + h + gap),
                  (under_x, y - round(LABEL_H * scale) - panel_h)]  # above: clear of the label over the box
    fits = [(px, py) for px, py in candidates if 0 <= px <= width - panel_w and 0 <= py <= height - panel_h]
    px, py = fits[0] if fits else (int(np.clip(x + w - panel_w, 0, width - panel_w)), side_y)
    return px, py, panel_w, panel_h


def _bars(frame_bgr: np.ndarray, probs: dict[str, float], panel: tuple[int, int, int, int], scale: float) -> None:
    """On a dark ground (readable over any image), one row per class: its name, then a bar as long as its probability
    (the row's last pixels stay free for the names' descenders)."""
    left, top, panel_w, panel_h = panel
    cv2.rectangle(frame_bgr, (left, top), (left + panel_w - 1, top + panel_h - 1), DARK, -1)
    bar_left, bar_h, row_h = left + int(NAME_W * scale), int(BAR_H * scale), int(ROW_H * scale)
    bar_w = left + panel_w - bar_left
    for i, name in enumerate(CLASS_NAMES):
        y = top + row_h * i
        cv2.rectangle(frame_bgr, (bar_left, y), (bar_left + bar_w - 1, y + bar_h - 1), GREY, -1)
        if filled := round(bar_w * probs[name]):
            cv2.rectangle(frame_bgr, (bar_left, y), (bar_left + filled - 1, y + bar_h - 1), GREEN, -1)
        cv2.putText(frame_bgr, name, (left, y + bar_h - 1), FONT, 0.35 * scale, WHITE, 1)
