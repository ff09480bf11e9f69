"""What DVC and people read after training and evaluation: metrics and report JSON, tables and figures."""

from pathlib import Path

import numpy as np
import pandas as pd

from emotion.config import EvaluateConfig, TrainConfig
from emotion.data.labels import CLASS_NAMES
from emotion.evaluation import calibration, figures
from emotion.evaluation.scoring import Scores
from emotion.jsonfiles import write_json
from emotion.tracking.model_files import CURVES


def write_training_report(history: pd.DataFrame, cfg: TrainConfig):
    """Per-epoch history (CSV), curves figure and the metrics experiments compare (JSON); returns (metrics, figure).

    The last epoch's values are history's last row; the run id is in train.run_file.
    """
    Path(cfg.history_file).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(cfg.history_file, index=False)
    fig = figures.training_curves(history)
    figures.save(fig, Path(cfg.history_file).with_name(CURVES))
    best = history.loc[history["val_accuracy"].idxmax()]
    saved = "val_ema_accuracy" if "val_ema_accuracy" in history else "val_accuracy"  # the model saved: the last epoch's
    metrics = {
        "epochs": int(history["epoch"].max()),
        "best_val_accuracy": round(float(best["val_accuracy"]), 4),
        "best_epoch": int(best["epoch"]),
        "final_val_accuracy": round(float(history[saved].iloc[-1]), 4),
    }
    write_json(metrics, cfg.metrics_file)
    return metrics, fig


def write_evaluation_report(scores: Scores, variants: dict, label_ids, probs, model_ref: dict, cfg: EvaluateConfig,
                            calibrated: dict, test_time: str, uncalibrated: np.ndarray) -> dict:
    """The full test report and the few metrics experiments compare (JSON), a per-image actual/predicted table and
    the confusion figure; returns the report.

    model_ref names what was scored: {"run_id": ...} or {"model_dir": ...}; test_time the model's test-time scheme
    that scores and probs come from; variants holds the headline scores of each scheme, on all test faces and on
    those without a copy in training; uncalibrated the probabilities with the model's calibration taken out.
    """
    report = {
        **model_ref,
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "weighted_f1": round(scores.weighted_f1, 4),
        "per_class": {name: {k: round(v, 4) for k, v in row.items()} for name, row in scores.per_class.items()},
        "confusion_matrix": scores.confusion.tolist(),
        "test_time": test_time,
        "variants": {name: {k: round(v, 4) for k, v in row.items()} for name, row in variants.items()},
        "calibration": {k: round(v, 4) for k, v in calibrated.items()},
    }
    predicted_ids = probs.argmax(axis=1)
    write_json(report, cfg.report_file)
    write_json({"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                "recall_disgust": report["per_class"]["disgust"]["recall"]}, cfg.metrics_file)
    Path(cfg.confusion_file).parent.mkdir(parents=True, exist_ok=True)
    names = pd.Series(CLASS_NAMES)
    pd.DataFrame({"actual": names[label_ids].to_numpy(), "predicted": names[predicted_ids].to_numpy()}).to_csv(
        cfg.confusion_file, index=False
    )
    Path(cfg.figure_file).parent.mkdir(parents=True, exist_ok=True)
    figures.save(figures.confusion_matrices(scores.confusion), cfg.figure_file)
    tables = {"as saved": calibration.reliability(probs, label_ids)}
    if not np.allclose(uncalibrated, probs):
        offsets = " and class offsets" if "test_macro_f1_calibrated" in calibrated else ""
        tables[f"without its temperature {calibrated['temperature']:.3f}{offsets}"] = calibration.reliability(
            uncalibrated, label_ids)
    figures.save(figures.reliability_diagram(tables), cfg.reliability_file)
    return report
