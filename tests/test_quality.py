"""Duplicates and the train/test image-statistics check."""

import cv2
import numpy as np
import pandas as pd

from emotion.data import quality


def manifest(rows):
    return pd.DataFrame(rows, columns=["split", "label", "ref", "sha256"])


def test_duplicates_are_grouped_and_counted_within_and_across_splits():
    dup = quality.find_duplicates(manifest([
        ("train", "happy", "a", "h1"), ("train", "happy", "b", "h1"),
        ("train", "sad", "c", "h2"), ("test", "fear", "d", "h2"),
        ("test", "angry", "e", "h3"),
    ]))
    assert sorted(dup["ref"]) == ["a", "b", "c", "d"]
    assert quality.summarize_duplicates(dup) == {
        "groups": 2, "images": 4, "within_split_groups": 1, "cross_split_groups": 1, "conflicting_label_groups": 1,
    }


def test_blurred_train_split_is_flagged(caplog):
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (20, 48, 48), np.uint8)
    blurred = np.stack([cv2.GaussianBlur(face, (7, 7), 3) for face in sharp])
    splits = pd.Series(["train"] * 10 + ["test"] * 10)
    same = quality.compare_splits(quality.image_stats(sharp), splits, warn_ratio=1.5)
    assert not same["warning"] and 0.67 < same["sharpness_ratio_train_test"] < 1.5
    mixed = quality.compare_splits(quality.image_stats(np.concatenate([blurred[:10], sharp[10:]])), splits, 1.5)
    assert mixed["warning"] and mixed["sharpness_ratio_train_test"] < 0.2
    assert "may carry a blurred or re-processed split" in caplog.text
