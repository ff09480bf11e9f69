"""Calibrate a trained model folder again (`python -m stages.calibrate`), on the validation faces it held out:
the split is drawn again from the model's own params.yaml (its split seed, or for models trained before
data.split_seed its training seed) and checked against the training-data hash in its tags.json, so the temperature
and class offsets are fitted on faces the model never trained on. Used to give an ensemble's members their own
offsets, each on its own held-out faces, before averaging them."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import yaml

from emotion.config import DataConfig
from emotion.data import dataset
from emotion.errors import ConfigError, DataError, ModelInvalid, ModelNotFound
from emotion.evaluation import calibration
from emotion.tracking.model_files import (
    CURVES, ENSEMBLE, HISTORY, PARAMS, TAGS, TEST_TIME, calibration_of, check_model_folder,
)
from emotion.tracking.model_io import load_model_files, save_model_files, write_expected_predictions

log = logging.getLogger(__name__)

KEPT = (PARAMS, HISTORY, CURVES, TEST_TIME)  # copied as they are; scores, card and int8 files are stale afterwards


def held_out_faces(folder: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(faces_u8, label ids) of the validation split the model in folder was trained without."""
    if not (folder / PARAMS).exists() or not (folder / TAGS).exists():
        raise ModelNotFound(f"{folder}: missing {PARAMS} or {TAGS}, so which faces it held out is unknown; calibrate "
                            "a model folder written by training or stages.export_run")
    params = yaml.safe_load((folder / PARAMS).read_text())
    expected = json.loads((folder / TAGS).read_text()).get("data_manifest_sha256")
    if expected is None:
        raise ModelInvalid(f"{folder / TAGS} records no data_manifest_sha256, so which faces it held out cannot be "
                           "checked; calibrate a model folder written by training or stages.export_run")
    data = params["data"]
    cfg = DataConfig(source=source, val_fraction=data["val_fraction"], max_per_class=data.get("max_per_class"),
                     split_seed=data.get("split_seed", params["seed"]))
    index = dataset.index_source(cfg)
    if expected not in dataset.training_data_hashes(index.manifest):
        raise DataError(f"{index.source}: these are not the training faces of {folder} (split seed "
                        f"{cfg.split_seed}; data hash differs from its {TAGS}); point --source at the data it was "
                        "trained on")
    return dataset.split_arrays(index, "val")


def recalibrate(folder: str | Path, out: str | Path, source: str, class_bias: bool) -> dict:
    """Write folder's model to out with its temperature (and with class_bias, class offsets) fitted anew on its
    held-out faces; return what out's calibration.json records."""
    folder, out = check_model_folder(folder), Path(out)
    if (folder / ENSEMBLE).exists():
        raise ModelInvalid(f"{folder} is an ensemble: calibrate each member, then average them again with "
                           "python -m stages.ensemble")
    if out.resolve() == folder.resolve():
        raise ConfigError(f"{out}: write to another folder; the model in {folder} stays as it is")
    faces_u8, label_ids = held_out_faces(folder, source)
    model = load_model_files(folder)
    calibration.unbake(model, *calibration_of(folder))  # fitted from the raw logits, not on top of the old fit
    record = calibration.calibrate(model, faces_u8, label_ids, class_bias)
    save_model_files(model, out, record)
    write_expected_predictions(model, out)
    for name in KEPT:
        if (folder / name).exists():
            shutil.copy(folder / name, out / name)
    tags = json.loads((folder / TAGS).read_text()) | {"calibrated_again_from": str(folder)}
    (out / TAGS).write_text(json.dumps(tags, indent=2) + "\n")
    log.info("%s -> %s: quantize it again (python -m realtime.quantize %s) before serving int8", folder, out, out)
    return record
