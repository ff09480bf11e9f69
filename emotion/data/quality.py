"""Data-quality checks of an index: exact duplicate images and per-split image statistics."""

import logging

import cv2
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

STATS = ("mean", "contrast", "sharpness")


def find_duplicates(manifest: pd.DataFrame) -> pd.DataFrame:
    """Manifest rows whose pixels occur more than once, with a group id per distinct image."""
    dup = manifest[manifest.duplicated("sha256", keep=False)].copy()
    dup["group"] = dup.groupby("sha256", sort=True).ngroup()
    return dup.sort_values(["group", "split", "ref"])[["group", "sha256", "split", "label", "ref"]]


def summarize_duplicates(duplicates: pd.DataFrame) -> dict[str, int]:
    """Counts of duplicate groups: all, within one split, spanning splits, and with conflicting labels."""
    groups = duplicates.groupby("group")
    n_splits, n_labels = groups["split"].nunique(), groups["label"].nunique()
    return {
        "groups": int(len(n_splits)),
        "images": int(len(duplicates)),
        "within_split_groups": int((n_splits == 1).sum()),
        "cross_split_groups": int((n_splits > 1).sum()),
        "conflicting_label_groups": int((n_labels > 1).sum()),
    }


def image_stats(faces_u8: np.ndarray) -> pd.DataFrame:
    """Per image: mean brightness, contrast (std) and sharpness (variance of the Laplacian)."""
    return pd.DataFrame(
        {
            "mean": faces_u8.mean(axis=(1, 2)),
            "contrast": faces_u8.std(axis=(1, 2)),
            "sharpness": [cv2.Laplacian(face, cv2.CV_64F).var() for face in faces_u8],
        }
    )


def compare_splits(stats: pd.DataFrame, splits: pd.Series, warn_ratio: float) -> dict:
    """Median statistics per split, and a warning when train and test sharpness differ by more than warn_ratio.

    Some public copies of FER2013 carry a blurred or re-processed train split; a model trained on one fails on
    real faces, so this is worth stopping to look at.
    """
    medians = stats.groupby(splits.to_numpy()).median()
    rows = {"medians": {split: {k: round(float(v), 2) for k, v in row.items()} for split, row in medians.iterrows()}}
    if "test" not in medians.index:  # a training-only index: nothing to compare with
        return rows
    train = medians.loc[[s for s in ("train", "val") if s in medians.index]].mean()
    ratio = float(train["sharpness"] / max(medians.loc["test", "sharpness"], 1e-9))
    warning = not (1 / warn_ratio <= ratio <= warn_ratio)
    if warning:
        log.warning(
            "train and test images differ strongly: median sharpness train %.0f vs test %.0f (ratio %.2f). This copy "
            "of FER2013 may carry a blurred or re-processed split; a model trained on it will do badly on real "
            "faces. Get the original data (kaggle msambare/fer2013 or fer2013.csv).",
            train["sharpness"], medians.loc["test", "sharpness"], ratio,
        )
    return rows | {"sharpness_ratio_train_test": round(ratio, 3), "warning": warning}
