"""Face crop -> model input: the size, scaling and channel axis shared by training and realtime inference."""

import cv2
import numpy as np

IMG_SIZE = 48
INPUT_SHAPE = (IMG_SIZE, IMG_SIZE, 1)


def to_model_input(faces_u8: np.ndarray) -> np.ndarray:
    """Scale uint8 faces (N, 48, 48) to the float32 model input (N, 48, 48, 1) in [0, 1]."""
    return (faces_u8.astype(np.float32) / 255.0)[..., np.newaxis]


def crop_face(gray_u8: np.ndarray, box: tuple[int, int, int, int], angle: float = 0.0) -> np.ndarray:
    """Cut the (x, y, w, h) box out of a grayscale frame and resize it to a 48x48 uint8 face; with an angle (degrees,
    counter-clockwise), the box is first turned about its centre by that much (eyes made level)."""
    x, y, w, h = box
    if angle:
        # turn a patch around the box (edges repeated beyond the frame), then cut the box from its middle
        side = int(np.ceil(max(w, h) * 1.5))
        patch = cv2.getRectSubPix(gray_u8, (side, side), (x + w / 2, y + h / 2))
        turned = cv2.warpAffine(patch, cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0), (side, side),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gray_u8, x, y = turned, (side - w) // 2, (side - h) // 2
    face = gray_u8[max(y, 0) : y + h, max(x, 0) : x + w]
    return cv2.resize(face, (IMG_SIZE, IMG_SIZE), interpolation=cv2.INTER_AREA)
