"""What labelling returns: a face's box, label and probabilities, a frame's faces (JSON-ready)."""

from dataclasses import asdict, dataclass

import numpy as np

from emotion.data.labels import CLASS_NAMES


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    label: str
    confidence: float
    probs: dict[str, float]  # all classes, in CLASS_NAMES order


@dataclass
class FrameResult:
    index: int
    time_s: float
    faces: list[FaceResult]

    def to_dict(self) -> dict:
        return asdict(self)


def face_result(box: tuple[int, int, int, int], probs: np.ndarray) -> FaceResult:
    best = int(np.argmax(probs))
    return FaceResult(
        box=tuple(int(v) for v in box),
        label=CLASS_NAMES[best],
        confidence=round(float(probs[best]), 4),
        probs={name: round(float(p), 4) for name, p in zip(CLASS_NAMES, probs)},
    )
