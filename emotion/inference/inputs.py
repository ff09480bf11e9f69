"""Where frames come from: a camera, a video file or an image, with one-line errors when they can't be read."""

import glob
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from emotion.errors import CameraUnavailable, DataError

Frames = Iterator[tuple[np.ndarray, float]]  # (BGR frame, seconds since the start)


def camera_frames(index: int, capture_factory: Callable = cv2.VideoCapture) -> tuple[Frames, Callable]:
    """Frames from camera `index` and a function that releases it; fails at once if it gives no frame."""
    capture = capture_factory(index)
    if not capture.isOpened():
        capture.release()
        raise CameraUnavailable(
            f"camera {index} cannot be opened: check it is connected and not used by another program, try "
            "--camera 1, or use --video FILE / --image FILE"
        )
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise CameraUnavailable(
            f"camera {index} opened but returned no frame: check camera permissions and that no other program "
            "holds it, or use --video FILE"
        )
    start = time.perf_counter()

    def frames() -> Frames:
        frame = first
        while frame is not None:
            yield frame, time.perf_counter() - start
            ok, frame = capture.read()
            if not ok:
                return

    return frames(), capture.release


def video_frames(path: str | Path, threads: int = 0) -> tuple[Frames, Callable, float]:
    """Frames of a video file with their timestamps, a release function, and the video's frame rate; threads: the
    decoder's (0: its default)."""
    if not Path(path).is_file():
        raise DataError(f"video {path} does not exist: check the path")
    capture = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, threads] if threads else [])
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise DataError(f"cannot read video {path}: not a video OpenCV can decode (try converting it to .mp4)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # from the container's header; 0 when unknown

    def frames() -> Frames:
        frame, index = first, 0
        while frame is not None:
            yield frame, index / fps
            index += 1
            frame = capture.read()[1]
        if index < expected - 1:  # one frame of slack: some containers count a trailing frame they cannot decode
            raise DataError(f"video {path} ended after {index} of its {expected} frames (truncated or corrupt): "
                            "re-encode or re-download the file")  # what became of the frames before: the caller's

    return frames(), capture.release, fps


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def image_paths(specs: list[str]) -> list[Path]:
    """The image files that files, folders (their images, sorted) and glob patterns name; each must exist."""
    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec))
            if not matches:
                raise DataError(f"no file matches {spec}: check the pattern (quote it to let this program expand it)")
            paths += matches
        elif path.is_file():
            paths.append(path)
        else:
            raise DataError(f"image {spec} does not exist: check the path")
    if not paths:
        raise DataError(f"no images in {' '.join(specs)}: give image files, folders holding them, or a glob")
    return paths


def read_image(path: str | Path) -> np.ndarray:
    """A BGR image from a file."""
    if not Path(path).is_file():
        raise DataError(f"image {path} does not exist: check the path")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"cannot read image {path}: not an image OpenCV can decode (jpg, png, bmp, ...)")
    return image
