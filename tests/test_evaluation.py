"""Test metrics against values worked out by hand."""

import numpy as np
import pytest

from emotion.evaluation import score


def test_scores_match_hand_computed_values():
    truth = np.array([0, 0, 1, 3, 3, 3])
    predicted = np.array([0, 3, 1, 3, 3, 0])
    scores = score(truth, predicted)
    assert scores.accuracy == pytest.approx(4 / 6)
    assert scores.per_class["angry"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert scores.per_class["happy"]["recall"] == pytest.approx(2 / 3)
    assert scores.per_class["fear"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores.confusion.shape == (7, 7) and scores.confusion[0, 3] == 1 and scores.confusion.sum() == 6
    # macro-F1 over all 7 classes, absent ones counting 0
    assert scores.macro_f1 == pytest.approx((0.5 + 1.0 + 2 / 3) / 7)
    flat = scores.flat()
    assert flat["test_accuracy"] == scores.accuracy and "test_recall_disgust" in flat
