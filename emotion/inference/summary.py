"""Video summary: faces followed across frames (box overlap) and the share of time each spends in each emotion."""

from pathlib import Path

import numpy as np
import pandas as pd

from emotion.data.labels import CLASS_NAMES
from emotion.evaluation import figures
from emotion.inference.records import FrameResult


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


class EmotionSummary:
    """Collects frame records; a face continues the track whose last box it overlaps most (IoU >= min_iou)."""

    def __init__(self, min_iou: float = 0.3):
        self.min_iou = min_iou
        self.last_boxes: dict[int, tuple[int, int, int, int]] = {}
        self.rows: list[tuple[int, str]] = []  # (track, label) per face and frame
        self.times: list[float] = []

    def add(self, result: FrameResult) -> None:
        self.times.append(result.time_s)
        free = dict(self.last_boxes)
        for face in result.faces:
            overlaps = {track: iou(face.box, box) for track, box in free.items()}
            track = max(overlaps, key=overlaps.get, default=None)
            if track is None or overlaps[track] < self.min_iou:
                track = len(self.last_boxes)
            free.pop(track, None)
            self.last_boxes[track] = face.box
            self.rows.append((track, face.label))

    def table(self) -> pd.DataFrame:
        """track, emotion, seconds, share (of that track's time), for every track and emotion."""
        frame_s = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0
        counts = pd.crosstab(
            pd.Series([r[0] for r in self.rows], name="track"), pd.Series([r[1] for r in self.rows], name="emotion")
        ).reindex(columns=list(CLASS_NAMES), fill_value=0)
        shares = counts.div(counts.sum(axis=1), axis=0)
        return pd.DataFrame(
            {"seconds": (counts * frame_s).stack().round(3), "share": shares.stack().round(4)}
        ).reset_index()

    def write(self, csv_path: str | Path) -> pd.DataFrame:
        """Write the table as CSV and a stacked-bar figure beside it (same name, .png)."""
        table = self.table()
        table.to_csv(csv_path, index=False)
        figures.save(figures.emotion_shares(table), Path(csv_path).with_suffix(".png"))
        return table
