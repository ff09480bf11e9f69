"""Calibration: expected calibration error, the temperature fitted to overconfident probabilities, class offsets
fitted for macro-F1, and both baked into a model's last layer."""

import numpy as np
import pytest

from conftest import compose_config
from emotion.data.labels import CLASS_NAMES
from emotion.data.preprocess import to_model_input
from emotion.evaluation import calibration
from emotion.tracking import model_files, model_io
from emotion.training.model import build_model


def drawn(rng, count: int, sharpen: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them (calibrated), then sharpened by a temperature of 1 / sharpen."""
    logits = rng.normal(0, 1.5, (count, 7))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(7, p=p) for p in probs])
    return calibration.with_temperature(probs, 1 / sharpen), labels


def test_calibrated_probabilities_have_a_small_error_and_sharpened_ones_a_large_one():
    rng = np.random.default_rng(0)
    fair, labels = drawn(rng, 20_000, 1.0)
    sharp, _ = drawn(np.random.default_rng(0), 20_000, 2.0)
    assert calibration.expected_calibration_error(fair, labels) < 0.015
    assert calibration.expected_calibration_error(sharp, labels) > 0.1
    table = calibration.reliability(sharp, labels)
    assert table["faces"].sum() == 20_000 and (table["confidence"] > table["accuracy"]).mean() > 0.8


def test_the_fitted_temperature_undoes_the_sharpening():
    sharp, labels = drawn(np.random.default_rng(1), 20_000, 2.0)
    temperature = calibration.fit_temperature(sharp, labels)
    assert temperature == pytest.approx(2.0, rel=0.05)
    scores = calibration.summary(sharp, labels, temperature, "val")
    assert scores["val_ece_calibrated"] < 0.015 < scores["val_ece"]
    assert scores["val_log_loss_calibrated"] < scores["val_log_loss"]
    np.testing.assert_allclose(calibration.with_temperature(sharp, 1.0), sharp, atol=1e-9)


def test_a_baked_temperature_softens_the_models_outputs_and_keeps_its_classes():
    model = build_model(compose_config().model)
    faces = np.random.default_rng(2).integers(0, 256, (16, 48, 48), np.uint8)
    before = model.predict(to_model_input(faces), verbose=0)
    calibration.bake(model, 1.7)
    after = model.predict(to_model_input(faces), verbose=0)
    np.testing.assert_allclose(after, calibration.with_temperature(before, 1.7), atol=1e-5)
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()
    restored = calibration.test_scores(after, before.argmax(axis=1), 1.7)  # T taken back out: the original outputs
    assert restored["temperature"] == 1.7 and restored["test_ece"] != restored["test_ece_calibrated"]


def under_predicting(rng, count: int, shy: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities and their labels, then class `shy` played down (its logit lowered by 1)."""
    probs, labels = drawn(rng, count, 1.0)
    return calibration.with_temperature(probs, 1.0, -np.eye(7)[shy]), labels


def recall(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float((probs.argmax(axis=1)[labels == k] == k).mean())


def test_class_offsets_fitted_on_validation_faces_give_an_under_predicted_class_its_recall_back():
    fit_probs, fit_labels = under_predicting(np.random.default_rng(3), 8000, shy=5)
    bias = calibration.fit_class_bias(fit_probs, fit_labels)
    assert bias[5] - np.delete(bias, 5).mean() > 0.5  # the shy class is lifted against the others
    probs, labels = under_predicting(np.random.default_rng(4), 8000, shy=5)  # other faces, as a test split
    after = calibration.with_temperature(probs, 1.0, bias)
    assert recall(after, labels, 5) > recall(probs, labels, 5) + 0.1
    assert calibration.macro_f1(after, labels) > calibration.macro_f1(probs, labels)
    np.testing.assert_allclose(calibration.without(after, 1.0, bias), probs, atol=1e-6)


def test_no_class_is_offset_where_nothing_is_gained():
    labels = np.random.default_rng(7).integers(0, 7, 50)
    right = np.eye(7)[labels] * 0.9 + 0.01  # every face right already: any offset up to 1 leaves it so
    assert calibration.fit_class_bias(right, labels).tolist() == [0.0] * 7


def test_calibrate_bakes_temperature_and_offsets_and_records_both(monkeypatch, tmp_path):
    model = build_model(compose_config().model)
    faces = np.random.default_rng(5).integers(0, 256, (64, 48, 48), np.uint8)
    before = model.predict(to_model_input(faces), verbose=0)
    labels = np.random.default_rng(6).integers(0, 7, 64)
    offsets = np.array([0.0, 0.5, 0.0, -0.25, 0.0, 0.3, 0.0])
    monkeypatch.setattr(calibration, "fit_class_bias", lambda probs, label_ids: offsets)
    record = calibration.calibrate(model, faces, labels, class_bias=True)
    temperature = record["temperature"]
    after = model.predict(to_model_input(faces), verbose=0)
    np.testing.assert_allclose(after, calibration.with_temperature(before, temperature, offsets), atol=1e-5)
    assert [record[f"class_bias_{name}"] for name in CLASS_NAMES] == offsets.tolist()
    assert {"val_macro_f1_uncalibrated", "val_macro_f1_calibrated"} <= set(record)
    assert all(isinstance(value, float) for value in record.values())  # logged as MLflow metrics
    model_io.save_model_files(model, tmp_path, calibration=record)
    temperature_read, offsets_read = model_files.calibration_of(tmp_path)  # as the evaluate stage reads them
    assert temperature_read == temperature and offsets_read.tolist() == offsets.tolist()
