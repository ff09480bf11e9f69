"""Test metrics against values worked out by hand."""

import numpy as np
import pandas as pd
import pytest

from conftest import compose_config
from emotion.data.dataset import without_training_copies
from emotion.evaluation.scoring import by_scheme, flat_variants, predict, predict_views, score, variants
from emotion.inference.views import TestTime, shifted
from emotion.training.model import build_model


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
    flip = TestTime("flip")
    np.testing.assert_allclose(predict(model, faces, test_time=flip), (plain + mirrored) / 2, atol=1e-6)
    symmetric = np.concatenate([faces[:, :, :24], faces[:, :, :24][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(predict(model, symmetric, test_time=flip), predict(model, symmetric), atol=1e-6)


def test_crops_average_ten_windows_that_the_models_centre_crop_sees():
    cfg = compose_config("model.filters=[4]", "model.block_dropout=[0.0]", "model.dense_units=4", "model.crop_px=44",
                         "model.crop_jitter_px=2", "model.test_time=crops").model
    model = build_model(cfg)
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), np.uint8)
    crops = TestTime("crops", 2)
    assert crops.count == 10 and crops.views(faces).shape == (10, 3, 48, 48)
    # a window moved by (-2, +2): the centre 44 px of the moved face is the face's rows 4-47, columns 0-43
    np.testing.assert_array_equal(shifted(faces, -2, 2)[:, 2:46, 2:46], faces[:, 4:48, 0:44])
    windows = [np.pad(faces, ((0, 0), (2, 2), (2, 2)), mode="edge")[:, 2 - dy: 50 - dy, 2 - dx: 50 - dx]
               for dy, dx in ((0, 0), (-2, -2), (-2, 2), (2, -2), (2, 2))]
    by_hand = np.mean([predict(model, side) for w in windows for side in (w, w[:, :, ::-1])], axis=0)
    np.testing.assert_allclose(predict(model, faces, test_time=crops), by_hand, atol=1e-6)
    schemes = predict_views(model, faces, shift_px=2)
    np.testing.assert_allclose(schemes["tta_crops"], by_hand, atol=1e-6)
    np.testing.assert_allclose(schemes["tta_flip"], predict(model, faces, test_time=TestTime("flip")), atol=1e-6)
    np.testing.assert_allclose(schemes["plain"], predict(model, faces), atol=1e-6)


def test_unique_faces_exclude_those_with_a_copy_in_train_or_val():
    manifest = pd.DataFrame({"split": ["train", "val", "test", "test", "test", "test"],
                             "sha256": ["a", "b", "a", "b", "c", "c"]})
    assert without_training_copies(manifest).tolist() == [False, False, True, True]


def test_variants_score_plain_flip_and_unique_faces_separately():
    labels = np.array([0, 1, 1, 6])
    plain = np.eye(7)[[0, 1, 2, 2]]  # right on the first two
    flipped = np.eye(7)[[0, 1, 1, 6]] * 3  # right on all four: wins every average
    unique = np.array([False, True, True, True])
    result = variants(labels, by_scheme(np.stack([plain, flipped])), unique)
    assert result["plain"]["accuracy"] == 0.5 and result["tta_flip"]["accuracy"] == 1.0
    assert result["unique_plain"] == {"accuracy": pytest.approx(1 / 3), "macro_f1": pytest.approx(result[
        "unique_plain"]["macro_f1"]), "recall_disgust": 0.5, "images": 3}
    assert result["unique_tta_flip"]["accuracy"] == 1.0 and result["unique_tta_flip"]["images"] == 3
    assert flat_variants(result)["test_unique_plain_accuracy"] == pytest.approx(1 / 3)
