"""Test-time views: a model's predictions averaged over mirrored and shifted copies of each face.

The scheme is the model's own (model.test_time, recorded in its folder's test_time.json), so the evaluate stage's
headline and every inference path (CLI, API, server, batch, int8) run the same views:
- plain: the face as it is (1 view);
- flip: the face and its mirror image (2 views);
- crops: for a model that crops its input (model.crop_px < 48), the face and its mirror image each moved by
  shift_px (its training's crop jitter) to the four diagonal corners as well: the model's centre crop then sees
  five windows of each (10 views).
NumPy only: importable without TensorFlow.
"""

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emotion.config import TEST_TIME_SCHEMES as SCHEMES, ModelConfig
from emotion.errors import ConfigError, ModelInvalid, first_line
from emotion.tracking.model_files import TEST_TIME

VARIANTS = {"plain": "plain", "flip": "tta_flip", "crops": "tta_crops"}  # the evaluate report's name of each scheme
CORNERS = ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))


@dataclass(frozen=True)
class TestTime:
    __test__ = False  # a dataclass, not tests
    scheme: str = "plain"
    shift_px: int = 0  # crops: how far each window moves, diagonally

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigError(f"test-time scheme {self.scheme!r}: use one of {', '.join(SCHEMES)}")
        if self.scheme == "crops" and self.shift_px < 1:
            raise ConfigError("test-time crops need a model that crops its input: set model.crop_px below 48 and "
                              "model.crop_jitter_px (the windows move by it), or use flip")

    @property
    def count(self) -> int:
        """Views per face: the model runs this many times per face."""
        return {"plain": 1, "flip": 2, "crops": 2 * len(CORNERS)}[self.scheme]

    def views(self, faces_u8: np.ndarray) -> np.ndarray:
        """(count, N, 48, 48): the views of uint8 faces (N, 48, 48), the faces themselves first."""
        if self.scheme == "plain":
            return faces_u8[None]
        sides = (faces_u8, faces_u8[:, :, ::-1])
        if self.scheme == "flip":
            return np.stack(sides)
        s = self.shift_px
        return np.stack([shifted(side, dy * s, dx * s) for side in sides for dy, dx in CORNERS])

    def predict(self, predict: Callable[[np.ndarray], np.ndarray], faces_u8: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7): predict's on every view of the faces (one call), averaged per face."""
        if self.scheme == "plain":
            return predict(faces_u8)
        views = self.views(faces_u8)
        probs = predict(views.reshape(-1, *faces_u8.shape[1:]))
        return probs.reshape(len(views), len(faces_u8), -1).mean(axis=0)


def shifted(faces_u8: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The faces moved by (dy, dx) pixels, the edges repeated into the gap, so the centre crop sees another window."""
    height, width = faces_u8.shape[1:]
    r = max(abs(dy), abs(dx))
    padded = np.pad(faces_u8, ((0, 0), (r, r), (r, r)), mode="edge")
    return padded[:, r - dy : r - dy + height, r - dx : r - dx + width]


def read(folder: str | Path) -> TestTime:
    """The folder's test-time views (its test_time.json; plain without one)."""
    path = Path(folder) / TEST_TIME
    if not path.exists():
        return TestTime()
    try:
        return TestTime(**json.loads(path.read_text()))
    except (ValueError, TypeError, ConfigError) as err:
        raise ModelInvalid(f"{path}: not a test-time scheme ({first_line(err)}); write it as "
                           '{"scheme": "flip", "shift_px": 0} or delete it for plain') from err


def of_model(cfg: ModelConfig) -> TestTime:
    """A trained model's views: its model.test_time, moving crops by its crop jitter (when it crops)."""
    return TestTime(cfg.test_time, cfg.crop_jitter_px if cfg.crop_px < 48 else 0)


def record(test_time: TestTime) -> dict | None:
    """What a model folder's test_time.json holds for these views (see model_io.save_model_files); None for the
    default, plain without crops, which needs no file."""
    return None if test_time == TestTime() else asdict(test_time)


def chosen(folder: str | Path, choice: str = "model") -> TestTime:
    """The views to run for folder's model: its own ('model'), or the scheme named, moving by its crop jitter."""
    own = read(folder)
    if choice == "model" or choice == own.scheme:
        return own
    return TestTime(choice, own.shift_px if choice == "crops" else 0)
