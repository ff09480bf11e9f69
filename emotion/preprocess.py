"""Face crop -> model input: the size, scaling and channel axis shared by training and realtime inference."""

import cv2
import numpy as np

IMG_SIZE = 48
INPUT_SHAPE = (IMG_SIZE, IMG_SIZE, 1)


def to_model_input(faces_u8: np.ndarray) -> np.ndarray:
    """Scale uint8 faces (N, 48, 48) to the float32 model input (N, 48, 48, 1) in [0, 1]."""
    return (faces_u8.astype(np.float32) / 255.0)[..., np.newaxis]


def crop_face(gray_u8: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut the (x, y, w, h) box out of a grayscale frame and resize it to a 48x48 uint8 face."""
    x, y, w, h = box
    face = gray_u8[max(y, 0) : y + h, max(x, 0) : x + w]
    return cv2.resize(face, (IMG_SIZE, IMG_SIZE), interpolation=cv2.INTER_AREA)
