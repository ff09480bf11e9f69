"""Fixed, seeded perturbations of 48x48 faces that mimic what a webcam and a Haar box do to them.

Each takes uint8 faces (N, 48, 48) and a seed and returns perturbed uint8 faces of the same shape; the same seed
gives the same faces. Used to measure how much accuracy a model loses away from FER2013's clean crops.
"""

from collections.abc import Callable

import cv2
import numpy as np

from emotion.data.preprocess import IMG_SIZE

Perturbation = Callable[[np.ndarray, int], np.ndarray]


def _warp(face: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(face, matrix, (IMG_SIZE, IMG_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def box_shift(faces_u8: np.ndarray, seed: int, fraction: float = 0.1) -> np.ndarray:
    """The box moved by `fraction` of its size in a random direction (the face moves the other way)."""
    angles = np.random.default_rng(seed).uniform(0, 2 * np.pi, len(faces_u8))
    shift = fraction * IMG_SIZE
    return np.stack([_warp(face, np.float32([[1, 0, shift * np.cos(a)], [0, 1, shift * np.sin(a)]]))
                     for face, a in zip(faces_u8, angles)])


def box_scale(faces_u8: np.ndarray, seed: int, scale: float) -> np.ndarray:
    """The box scaled by `scale` about its centre: > 1 shows more background, < 1 cuts into the face."""
    centre = (IMG_SIZE - 1) / 2
    matrix = cv2.getRotationMatrix2D((centre, centre), 0, 1 / scale)
    return np.stack([_warp(face, matrix) for face in faces_u8])


def brightness(faces_u8: np.ndarray, seed: int, delta: int = 50) -> np.ndarray:
    """Every face lighter or darker (random sign) by `delta` grey levels, clipped."""
    signs = np.random.default_rng(seed).choice([-1, 1], len(faces_u8))[:, None, None]
    return np.clip(faces_u8.astype(np.int16) + signs * delta, 0, 255).astype(np.uint8)


def contrast(faces_u8: np.ndarray, seed: int, factor: float = 0.5) -> np.ndarray:
    """Contrast around each face's mean scaled by `factor` (washed out below 1)."""
    mean = faces_u8.mean(axis=(1, 2), keepdims=True)
    return np.clip((faces_u8 - mean) * factor + mean, 0, 255).round().astype(np.uint8)


def blur(faces_u8: np.ndarray, seed: int, sigma: float = 1.5) -> np.ndarray:
    """Gaussian blur (an out-of-focus or low-resolution camera)."""
    return np.stack([cv2.GaussianBlur(face, (0, 0), sigma) for face in faces_u8])


def jpeg(faces_u8: np.ndarray, seed: int, quality: int = 30) -> np.ndarray:
    """JPEG compression at `quality` (a streamed or re-saved image)."""
    def roundtrip(face: np.ndarray) -> np.ndarray:
        return cv2.imdecode(cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE)
    return np.stack([roundtrip(face) for face in faces_u8])


PERTURBATIONS: dict[str, Perturbation] = {
    "box shifted 10 %": box_shift,
    "box scaled 0.85": lambda faces, seed: box_scale(faces, seed, 0.85),
    "box scaled 1.2": lambda faces, seed: box_scale(faces, seed, 1.2),
    "brightness +-50": brightness,
    "contrast x0.5": contrast,
    "Gaussian blur 1.5": blur,
    "JPEG quality 30": jpeg,
}
