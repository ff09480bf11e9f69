"""Frames -> records: detect faces, crop them as in training, classify all faces of a frame in one batch."""

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from emotion.config import RealtimeConfig, TrackingConfig
from emotion.data.labels import CLASS_NAMES
from emotion.data.preprocess import IMG_SIZE, crop_face
from emotion.errors import UserError
from emotion.inference import inputs
from emotion.inference.faces import Face, face_detector
from emotion.inference.models import ModelChoice, ResolvedModel, resolve
from emotion.inference.records import FaceResult, FrameResult, face_result


class EmotionRecognizer:
    """Faces and their emotions in images, video frames and video files: the one way from pixels to records, used by
    the CLI, the Python API and the benchmarks.

    >>> rec = EmotionRecognizer.from_dir("models/efficient")
    >>> [(face.label, face.confidence) for face in rec.analyze("photo.jpg")]
    """

    def __init__(self, backend, cfg: RealtimeConfig | None = None, model: ResolvedModel | None = None):
        self.cfg = cfg or RealtimeConfig()
        self.detector, self.backend, self.model = face_detector(self.cfg), backend, model
        self.faces: list[Face] = []

    @classmethod
    def from_choice(cls, choice: ModelChoice, cfg: RealtimeConfig | None = None,
                    tracking: TrackingConfig | None = None):
        """A recognizer for the chosen model (see models.resolve), on the chosen backend (choice.backend, else
        cfg.backend), with cfg's test-time views; what the CLI, the server, batch video and the API all use."""
        cfg = cfg or RealtimeConfig()
        model = resolve(choice, tracking or TrackingConfig(), cfg.cache_dir)
        return cls(model.load(choice.backend or cfg.backend, cfg.test_time), cfg, model)

    @classmethod
    def from_dir(cls, folder: str | Path, backend: str | None = None, cfg: RealtimeConfig | None = None):
        """A recognizer for the model folder (model.json + weights, e.g. models/efficient); no MLflow needed."""
        return cls.from_choice(ModelChoice(model_dir=folder, backend=backend), cfg)

    @classmethod
    def from_mlflow(cls, model_uri: str | None = None, run_id: str | None = None, backend: str | None = None,
                    cfg: RealtimeConfig | None = None, tracking: TrackingConfig | None = None):
        """A recognizer for a tracked model: a models:/ or runs:/ URI, or a run id (default: the registry's
        champion; without an MLflow store, the shipped model), pulled once into the local cache."""
        return cls.from_choice(ModelChoice(run_id, model_uri, backend=backend), cfg, tracking)

    def classify(self, faces_u8: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7), columns in CLASS_NAMES order, for ready 48x48 uint8 face crops (N, 48, 48)."""
        faces_u8 = np.asarray(faces_u8)
        if faces_u8.dtype != np.uint8 or faces_u8.shape[1:] != (IMG_SIZE, IMG_SIZE):
            raise UserError(f"classify takes uint8 faces of shape (N, {IMG_SIZE}, {IMG_SIZE}), got {faces_u8.dtype} "
                            f"{faces_u8.shape}: crop and resize with emotion.data.preprocess.crop_face, or use analyze()")
        return self.backend.predict(faces_u8)

    def analyze(self, image: str | Path | np.ndarray, channels: str = "bgr") -> list[FaceResult]:
        """The faces in one image: a path, or a uint8 array that is grey (H, W) or colour (H, W, 3 or 4) in
        `channels` order ('bgr' as OpenCV reads, 'rgb' as PIL and matplotlib do)."""
        frame = inputs.read_image(image) if isinstance(image, (str, Path)) else as_bgr(image, channels)
        return self.label_frame(frame, 0, 0.0).faces

    def label_frame(self, frame_bgr: np.ndarray, index: int, time_s: float) -> FrameResult:
        """One frame of a stream; the detector runs every cfg.detect_every frames (frame 0 always, so a new image or
        video starts afresh) and its boxes carry over."""
        if index % self.cfg.detect_every == 0:
            self.faces = self.detector.detect(frame_bgr)
        if not self.faces:
            return FrameResult(index, time_s, [])
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
        probs = self.backend.predict(np.stack([crop_face(gray, face.box, face.angle) for face in self.faces]))
        return FrameResult(index, time_s, [face_result(face.box, p) for face, p in zip(self.faces, probs)])

    def label_video(self, path: str | Path, max_frames: int | None = None, threads: int = 0) -> Iterator[FrameResult]:
        """The records of a video file's frames, in order (threads: the decoder's, 0 its default); DataError if it
        cannot be read or ends early."""
        frames, release, _ = inputs.video_frames(path, threads)
        try:
            for index, (frame, time_s) in enumerate(frames):
                if max_frames is not None and index >= max_frames:
                    break
                yield self.label_frame(frame, index, time_s)
        finally:
            release()

    def analyze_video(self, path: str | Path, max_frames: int | None = None):
        """(per-face records of every frame, per-track summary) of a video file, as pandas DataFrames.

        Records: frame, time_s, face, x, y, w, h, label, confidence and one column per emotion. Summary: track,
        emotion, seconds, share (of that face's time), faces followed across frames by box overlap.
        """
        import pandas as pd

        from emotion.inference.summary import EmotionSummary

        summary, rows = EmotionSummary(), []
        for result in self.label_video(path, max_frames):
            summary.add(result)
            rows += [{"frame": result.index, "time_s": result.time_s, "face": i, **dict(zip("xywh", face.box)),
                      "label": face.label, "confidence": face.confidence, **face.probs}
                     for i, face in enumerate(result.faces)]
        columns = ["frame", "time_s", "face", "x", "y", "w", "h", "label", "confidence", *CLASS_NAMES]
        return pd.DataFrame(rows, columns=columns), summary.table()


def as_bgr(image: np.ndarray, channels: str = "bgr") -> np.ndarray:
    """A uint8 grey or colour array as the BGR (or grey) frame OpenCV works on."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise UserError(f"expected a uint8 image (H, W), (H, W, 3) or (H, W, 4), got {image.dtype} {image.shape}: "
                        "load it with cv2.imread, or pass the file's path")
    if channels not in ("bgr", "rgb"):
        raise UserError(f"channels={channels!r}: use 'bgr' (OpenCV) or 'rgb' (PIL, matplotlib)")
    if image.ndim == 2:
        return image
    code = {("bgr", 4): cv2.COLOR_BGRA2BGR, ("rgb", 3): cv2.COLOR_RGB2BGR, ("rgb", 4): cv2.COLOR_RGBA2BGR}
    return cv2.cvtColor(image, code[(channels, image.shape[2])]) if (channels, image.shape[2]) in code else image


