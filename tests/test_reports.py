"""Metrics files hold the few numbers experiments are compared by; the full reports hold the rest."""

import json

import numpy as np
import pandas as pd

from conftest import compose_config
from emotion.evaluation import calibration, reports, scoring


def test_test_metrics_are_the_compared_few_and_the_report_holds_every_score(workdir):
    cfg = compose_config().evaluate
    truth, predicted = np.arange(14) % 7, np.roll(np.arange(14) % 7, 1)
    scores = scoring.score(truth, predicted)
    probs = np.full((14, 7), 0.02) + 0.86 * np.eye(7)[predicted]
    variants = scoring.variants(truth, {"plain": probs}, np.ones(14, bool))
    calibrated = calibration.test_scores(probs, truth, 2.0)
    reports.write_evaluation_report(scores, variants, truth, probs, {"run_id": "abc"}, cfg, calibrated, "plain",
                                    calibration.without(probs, 2.0))
    metrics = json.loads((workdir / cfg.metrics_file).read_text())
    report = json.loads((workdir / cfg.report_file).read_text())
    assert metrics == {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                       "recall_disgust": report["per_class"]["disgust"]["recall"]}
    assert report["run_id"] == "abc" and set(report["variants"]) == {"plain", "unique_plain"}
    assert report["test_time"] == "plain"
    assert scoring.Scores.from_report(report).confusion.tolist() == scores.confusion.tolist()
    assert len(pd.read_csv(workdir / cfg.confusion_file)) == 14
    assert report["calibration"]["temperature"] == 2.0 and (workdir / cfg.reliability_file).stat().st_size > 10_000
    # all wrong at 0.88 confidence: ECE 0.88 as saved, more with the temperature taken out (sharper)
    assert report["calibration"]["test_ece_calibrated"] == 0.88 and report["calibration"]["test_ece"] > 0.88


def test_training_metrics_are_the_epochs_and_the_best_one(workdir):
    cfg = compose_config().train
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.4], "accuracy": [0.2, 0.3, 0.35],
                            "val_loss": [1.9, 1.6, 1.7], "val_accuracy": [0.25, 0.4, 0.38],
                            "learning_rate": [5e-4] * 3})
    reports.write_training_report(history, cfg)
    metrics = json.loads((workdir / cfg.metrics_file).read_text())
    assert metrics == {"epochs": 3, "best_val_accuracy": 0.4, "best_epoch": 2, "final_val_accuracy": 0.38}
    pd.testing.assert_frame_equal(pd.read_csv(workdir / cfg.history_file), history)
    history["val_ema_accuracy"] = [0.2, 0.3, 0.41]  # train.ema: the average is the model saved
    reports.write_training_report(history, cfg)
    assert json.loads((workdir / cfg.metrics_file).read_text())["final_val_accuracy"] == 0.41
