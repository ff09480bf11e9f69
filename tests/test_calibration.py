"""Calibration: expected calibration error, the temperature fitted to overconfident probabilities, and the
temperature baked into a model's last layer."""

import numpy as np
import pytest

from conftest import compose_config
from emotion.data.preprocess import to_model_input
from emotion.evaluation import calibration
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
    calibration.bake_temperature(model, 1.7)
    after = model.predict(to_model_input(faces), verbose=0)
    np.testing.assert_allclose(after, calibration.with_temperature(before, 1.7), atol=1e-5)
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()
    restored = calibration.test_scores(after, before.argmax(axis=1), 1.7)  # T taken back out: the original outputs
    assert restored["temperature"] == 1.7 and restored["test_ece"] != restored["test_ece_calibrated"]
