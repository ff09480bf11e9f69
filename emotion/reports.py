"""What DVC and people read after each stage: metrics JSON, plot tables and figures."""

import json
import logging
from pathlib import Path

import mlflow
import pandas as pd

from emotion import figures, quality, tracking
from emotion.config import DataConfig, EvaluateConfig, TrainConfig
from emotion.data import ALL_SPLITS, Index
from emotion.evaluation import Scores
from emotion.labels import CLASS_NAMES
from emotion.model_io import CURVES
from emotion.training import HISTORY_METRICS

log = logging.getLogger(__name__)

DUPLICATES = "duplicates.csv"


def write_index_report(index: Index, cfg: DataConfig) -> dict:
    """Write metrics, plots and duplicates.csv for an index and return the metrics."""
    plots = Path(cfg.plots_dir)
    plots.mkdir(parents=True, exist_ok=True)
    counts = pd.crosstab(index.manifest["label"], index.manifest["split"]).reindex(
        index=list(CLASS_NAMES), columns=list(ALL_SPLITS), fill_value=0
    )
    counts.rename_axis("label").reset_index().melt("label", var_name="split", value_name="images").to_csv(
        plots / "class_distribution.csv", index=False
    )
    figures.save(figures.class_distribution(counts), plots / "class_distribution.png")

    duplicates = quality.find_duplicates(index.manifest)
    duplicates.to_csv(Path(cfg.index_dir) / DUPLICATES, index=False)
    dup_summary = quality.summarize_duplicates(duplicates)
    if dup_summary["groups"]:
        log.info(
            "found %d groups of identical images (%d images): %d within one split, %d across splits, %d with "
            "conflicting labels; listed in %s",
            dup_summary["groups"], dup_summary["images"], dup_summary["within_split_groups"],
            dup_summary["cross_split_groups"], dup_summary["conflicting_label_groups"],
            Path(cfg.index_dir) / DUPLICATES,
        )

    stats = quality.image_stats(index.faces_u8)
    figures.save(figures.image_stats(stats, index.manifest["split"]), plots / "image_stats.png")
    metrics = {
        "source": index.source,
        "images": {split: int(counts[split].sum()) for split in ALL_SPLITS},
        "per_class": {split: counts[split].to_dict() for split in ALL_SPLITS},
        "rejected": len(index.rejects),
        "duplicates": dup_summary,
        "image_stats": quality.compare_splits(stats, index.manifest["split"], cfg.sharpness_warn_ratio),
    }
    write_json(metrics, cfg.metrics_file)
    return metrics


def write_training_report(run_id: str, cfg: TrainConfig) -> dict:
    """Per-epoch history (CSV for dvc plots), curves figure (also logged to the run) and final metrics JSON."""
    history = tracking.metric_history(run_id, HISTORY_METRICS)
    Path(cfg.history_file).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(cfg.history_file, index=False)
    fig = figures.training_curves(history)
    mlflow.log_figure(fig, CURVES)
    figures.save(fig, Path(cfg.history_file).with_name(CURVES))
    best = history.loc[history["val_accuracy"].idxmax()]
    metrics = {
        "run_id": run_id,
        "epochs": int(history["epoch"].max()),
        "final": {k: round(float(history[k].iloc[-1]), 4) for k in HISTORY_METRICS if k != "learning_rate"},
        "best_val_accuracy": round(float(best["val_accuracy"]), 4),
        "best_epoch": int(best["epoch"]),
    }
    write_json(metrics, cfg.metrics_file)
    return metrics


def write_evaluation_report(scores: Scores, label_ids, predicted_ids, model_ref: dict, cfg: EvaluateConfig) -> dict:
    """Test metrics JSON, a per-image actual/predicted table for DVC's confusion plot, and the confusion figure.

    model_ref names what was scored: {"run_id": ...} or {"model_dir": ...}.
    """
    metrics = {
        **model_ref,
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "weighted_f1": round(scores.weighted_f1, 4),
        "per_class": {name: {k: round(v, 4) for k, v in row.items()} for name, row in scores.per_class.items()},
        "confusion_matrix": scores.confusion.tolist(),
        "tta_flip": cfg.tta_flip,
    }
    write_json(metrics, cfg.metrics_file)
    Path(cfg.confusion_file).parent.mkdir(parents=True, exist_ok=True)
    names = pd.Series(CLASS_NAMES)
    pd.DataFrame({"actual": names[label_ids].to_numpy(), "predicted": names[predicted_ids].to_numpy()}).to_csv(
        cfg.confusion_file, index=False
    )
    Path(cfg.figure_file).parent.mkdir(parents=True, exist_ok=True)
    figures.save(figures.confusion_matrices(scores.confusion), cfg.figure_file)
    return metrics


def write_json(payload: dict, path: str | Path) -> None:
    """Write a metrics file, creating its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
