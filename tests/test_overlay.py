"""Drawing records: the probability panel sits beside the face and inside the image, at any image size."""

import numpy as np
import pytest

from emotion.inference.records import FrameResult, face_result
from realtime import overlay


def inside(box, shape) -> bool:
    x, y, w, h = box
    return x >= 0 and y >= 0 and x + w <= shape[1] and y + h <= shape[0]


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("shape, face", [
    ((480, 1280), (600, 150, 150, 150)),  # wide frame, room on the right
    ((480, 1280), (1100, 150, 170, 170)),  # at the right edge: the panel goes left
    ((480, 1280), (0, 300, 170, 170)),  # at the left and bottom edges
    ((600, 512), (152, 102, 226, 226)),  # a portrait photo (matplotlib's sample): no room on the right
    ((240, 160), (20, 10, 120, 120)),  # small and narrow: below the face
    ((240, 160), (20, 110, 120, 120)),  # ... or above it
])
def test_the_panel_lies_inside_the_image_beside_the_face(shape, face):
    panel = overlay.panel_box(shape, face)
    assert inside(panel, shape) and not overlap(panel, face)


@pytest.mark.parametrize("shape", [(480, 640), (60, 50), (30, 400), (2160, 3840)])
def test_a_face_that_fills_the_image_keeps_its_panel_inside(shape):
    assert inside(overlay.panel_box(shape, (0, 0, shape[1], shape[0])), shape)


def test_the_panel_scales_with_the_image():
    small, large = overlay.panel_box((480, 640), (10, 10, 50, 50)), overlay.panel_box((960, 1280), (20, 20, 100, 100))
    assert large[2:] == (2 * small[2], 2 * small[3])


def test_drawing_leaves_the_face_and_the_corners_free():
    frame = np.zeros((480, 1280, 3), np.uint8)
    x, y, w, h = face = (1100, 150, 170, 170)
    overlay.draw(frame, FrameResult(0, 0.0, [face_result(face, np.eye(7)[3])]))
    assert not frame[y + 3 : y + h - 2, x + 3 : x + w - 2].any()  # the face shows through its box
    px, py, pw, ph = overlay.panel_box(frame.shape, face)
    assert frame[py : py + ph, px : px + pw].any()
    rest = frame.copy()
    rest[py : py + ph, px : px + pw] = 0  # the panel
    rest[y - 30 : y + h + 2, x - 1 : x + w + 2] = 0  # the box and its label above it
    assert not rest.any()  # nothing else: no FPS counter, nothing off the panel


def test_the_fps_counter_is_drawn_only_on_request():
    frame = np.zeros((480, 640, 3), np.uint8)
    overlay.draw_fps(frame, 30.0)
    assert (frame[:30, :70] == 255).all(axis=-1).sum() > 20
