"""Index a FER2013 source into a manifest, a rejects list and a uint8 array cache that training reads fast."""

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from emotion.config import DataConfig
from emotion.data.labels import CLASS_IDS, CLASS_NAMES
from emotion.data.sources import Sample, open_source, resolve_source
from emotion.errors import DataError

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
REJECTS = "rejects.csv"
CACHE = "cache.npz"
SOURCE = "source.txt"  # the source actually read: FER2013_SOURCE may stand in for the configured data.source
ALL_SPLITS = ("train", "val", "test")


@dataclass
class Index:
    """An indexed source: one manifest row per kept image, aligned with its uint8 pixels."""

    manifest: pd.DataFrame  # split, label, label_id, ref, sha256
    faces_u8: np.ndarray  # (N, 48, 48)
    rejects: pd.DataFrame  # ref, split, label, reason
    source: str


def index_source(cfg: DataConfig) -> Index:
    """Read every image of the configured source, reject bad ones, subset and carve the validation split."""
    location = resolve_source(cfg.source)
    source = open_source(location, tuple(cfg.splits))
    if source.count == 0:
        raise DataError(f"{location}: the source holds no images; check the path or re-download FER2013")
    kept, rejected = _read_all(source.samples, source.count)
    _log_rejects(rejected)
    _check_complete(kept, location, tuple(cfg.splits))
    manifest = pd.DataFrame(
        {
            "split": [s.split for s in kept],
            "label": [s.label for s in kept],
            "label_id": [CLASS_IDS[s.label] for s in kept],
            "ref": [s.ref for s in kept],
        }
    )
    faces_u8 = np.stack([s.pixels for s in kept])
    manifest["sha256"] = [hashlib.sha256(face.tobytes()).hexdigest() for face in faces_u8]
    rng = np.random.default_rng(cfg.split_seed)
    if cfg.max_per_class is not None:
        keep = _subset_per_class(manifest, cfg.max_per_class, rng)
        manifest, faces_u8 = manifest.iloc[keep].reset_index(drop=True), faces_u8[keep]
    manifest.loc[_validation_rows(manifest, cfg.val_fraction, rng), "split"] = "val"
    rejects = pd.DataFrame(
        [(s.ref, s.split, s.label, s.error) for s in rejected], columns=["ref", "split", "label", "reason"]
    )
    return Index(manifest, faces_u8, rejects, location)


def _read_all(samples, count: int) -> tuple[list[Sample], list[Sample]]:
    kept, rejected = [], []
    progress = keras.utils.Progbar(count, unit_name="image")
    for i, sample in enumerate(samples, 1):
        (rejected if sample.error else kept).append(sample)
        if i % 1000 == 0 or i == count:
            progress.update(i)
    return kept, rejected


def _log_rejects(rejected: list[Sample]) -> None:
    for sample in rejected[:10]:
        log.warning("rejected %s: %s", sample.ref, sample.error)
    if len(rejected) > 10:
        log.warning("... and %d more rejected images, listed in %s", len(rejected) - 10, REJECTS)


def _check_complete(kept: list[Sample], location: str, splits: tuple[str, ...]) -> None:
    """Every split and class must keep at least one image, or training/evaluation would be meaningless."""
    present = {(s.split, s.label) for s in kept}
    for split in splits:
        if not any((split, label) in present for label in CLASS_NAMES):
            raise DataError(
                f"{location}: missing split '{split}' (no readable {split} images); the source needs both "
                "train and test images"
            )
        for label in CLASS_NAMES:
            if (split, label) not in present:
                raise DataError(
                    f"{location}: class '{label}' has no readable images in split '{split}'; add some or "
                    f"check {REJECTS}"
                )


def _subset_per_class(manifest: pd.DataFrame, max_per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Row numbers of at most max_per_class random train images per class and of the whole test split, in order.

    The test split stays whole so that a quick experiment is scored on the same images as any other run.
    """
    train = (manifest["split"] == "train").to_numpy()
    rows, groups = np.flatnonzero(train), manifest[train].groupby("label", sort=True).indices.values()
    chosen = [rows[rng.permutation(group)[:max_per_class]] for group in groups]
    return np.sort(np.concatenate([np.flatnonzero(~train), *chosen]))


def _validation_rows(manifest: pd.DataFrame, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Stratified, seeded validation rows from train.

    Done per class by hand so that tiny classes (tests, disgust in subsets) still get one validation image,
    which sklearn's stratified split refuses when the split is smaller than the number of classes.
    """
    train = manifest[manifest["split"] == "train"]
    chosen = []
    for rows in train.groupby("label", sort=True).indices.values():
        if len(rows) >= 2:
            n_val = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
            chosen.append(train.index.to_numpy()[rng.permutation(rows)[:n_val]])
    return np.sort(np.concatenate(chosen))


def write_index(index: Index, index_dir: str | Path) -> Path:
    """Write manifest.csv, rejects.csv, cache.npz (uint8 faces and label ids per split) and source.txt to index_dir."""
    out = Path(index_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SOURCE).write_text(f"{index.source}\n")
    index.manifest.to_csv(out / MANIFEST, index=False)
    index.rejects.to_csv(out / REJECTS, index=False)
    arrays = {}
    for split in ALL_SPLITS:
        if (index.manifest["split"] == split).any():
            arrays[f"x_{split}"], arrays[f"y_{split}"] = split_arrays(index, split)
    np.savez(out / CACHE, **arrays)
    return out


def split_arrays(index: Index, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(faces_u8, label ids as uint8) of one split of an index."""
    rows = (index.manifest["split"] == split).to_numpy()
    return index.faces_u8[rows], index.manifest.loc[rows, "label_id"].to_numpy(np.uint8)


def load_cache(index_dir: str | Path, splits: tuple[str, ...] = ("train", "val")) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(faces_u8, label ids) per requested split from the array cache; training never asks for 'test'."""
    path = Path(index_dir) / CACHE
    if not path.exists():
        raise DataError(f"{path} not found: run the index stage first (dvc repro index, or python -m stages.index)")
    with np.load(path) as cache:
        missing = [split for split in splits if f"x_{split}" not in cache]
        if missing:
            raise DataError(f"{Path(index_dir)} has no {' or '.join(missing)} split: it was indexed with "
                            "data.splits=[train]; index again with the default data.splits=[train, test]")
        return {split: (cache[f"x_{split}"], cache[f"y_{split}"]) for split in splits}


def indexed_source(index_dir: str | Path, configured: str) -> str:
    """The source the index was read from; for an index written before that was recorded, the one configured now."""
    path = Path(index_dir) / SOURCE
    return path.read_text().strip() if path.exists() else resolve_source(configured)


def load_manifest(index_dir: str | Path) -> pd.DataFrame:
    """The index's manifest: one row per kept image (split, label, label_id, ref, sha256), in cache order per split."""
    return pd.read_csv(Path(index_dir) / MANIFEST)


def without_training_copies(manifest: pd.DataFrame, split: str = "test") -> np.ndarray:
    """Mask over split's faces (cache order): True where no exact copy of the face is in train or val.

    FER2013 repeats about 700 faces across its train and test splits; scores on the rest are the honest ones.
    """
    seen = set(manifest.loc[manifest["split"].isin(["train", "val"]), "sha256"])
    return ~manifest.loc[manifest["split"] == split, "sha256"].isin(seen).to_numpy()


def manifest_hash(manifest: pd.DataFrame) -> str:
    """sha256 of an index's train and val rows (split, label, face hash): the exact data a model is trained on.

    The test rows are left out, so a training-only index (data.splits=[train]) of the same source has the same hash.
    """
    rows = manifest.loc[manifest["split"].isin(["train", "val"]), ["split", "label_id", "sha256"]]
    return hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()


def training_data_hashes(manifest: pd.DataFrame) -> set[str]:
    """The hashes a model trained on this (full) index may record: manifest_hash, or for models trained before
    2026-11-27 (the shipped efficient and reference models) the sha256 of the whole manifest.csv."""
    return {manifest_hash(manifest), hashlib.sha256(manifest.to_csv(index=False).encode()).hexdigest()}


def test_split_hash(manifest: pd.DataFrame) -> str:
    """sha256 of the test split's (label, face hash) pairs, sorted: which test images a score was measured on.

    Test scores compare only where this is equal; the listing order of a folder, zip or csv does not change it.
    """
    rows = manifest.loc[manifest["split"] == "test", ["label_id", "sha256"]].sort_values(["label_id", "sha256"])
    return hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()
