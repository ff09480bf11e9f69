"""Test metrics against values worked out by hand."""

import numpy as np
import pytest

from conftest import compose_config
from emotion.evaluation import predict, score
from emotion.model import build_model


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


def test_flip_tta_averages_a_face_and_its_mirror():
    model = build_model(compose_config("model.filters=[4]", "model.block_dropout=[0.0]", "model.dense_units=4").model)
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), np.uint8)
    plain, mirrored = predict(model, faces), predict(model, faces[:, :, ::-1])
    np.testing.assert_allclose(predict(model, faces, tta_flip=True), (plain + mirrored) / 2, atol=1e-6)
    symmetric = np.concatenate([faces[:, :, :24], faces[:, :, :24][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(predict(model, symmetric, tta_flip=True), predict(model, symmetric), atol=1e-6)
