"""What DVC and people read after indexing: class counts, duplicates, image statistics (report JSON and figures)."""

import logging
from pathlib import Path

import pandas as pd

from emotion.config import DataConfig
from emotion.data import quality
from emotion.data.dataset import ALL_SPLITS, Index
from emotion.data.labels import CLASS_NAMES
from emotion.evaluation import figures
from emotion.jsonfiles import write_json

log = logging.getLogger(__name__)

DUPLICATES = "duplicates.csv"


def write_index_report(index: Index, cfg: DataConfig) -> dict:
    """Write the report (JSON), figures and duplicates.csv for an index and return the report."""
    plots = Path(cfg.plots_dir)
    plots.mkdir(parents=True, exist_ok=True)
    counts = pd.crosstab(index.manifest["label"], index.manifest["split"]).reindex(
        index=list(CLASS_NAMES), columns=list(ALL_SPLITS), fill_value=0
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
    report = {
        "source": index.source,
        "images": {split: int(counts[split].sum()) for split in ALL_SPLITS},
        "per_class": {split: counts[split].to_dict() for split in ALL_SPLITS},
        "rejected": len(index.rejects),
        "duplicates": dup_summary,
        "image_stats": quality.compare_splits(stats, index.manifest["split"], cfg.sharpness_warn_ratio),
    }
    write_json(report, cfg.report_file)
    return report
