"""Training without MLflow (an accelerator machine has none): the run is written as an export folder that
`python -m stages.import_run` logs into any MLflow store afterwards (see run_export)."""

import json
import platform
from pathlib import Path

import keras
import pandas as pd
import yaml

from emotion import config, data, figures, provenance, training
from emotion.config import Config
from emotion.model_io import CURVES, HISTORY, PARAMS, TAGS, save_model_files, write_expected_predictions

RAW_HISTORY = "history.raw.csv"  # Keras' CSVLogger, appended across resumed fits


def train_to_folder(cfg: Config, arrays: dict, folder: str | Path) -> pd.DataFrame:
    """Fit (resuming from cfg.train.checkpoint_dir), then write model, params, history, tags and curves to folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not cfg.train.resume:
        training.clear_checkpoint(cfg.train.checkpoint_dir)
        (folder / RAW_HISTORY).unlink(missing_ok=True)
    logger = keras.callbacks.CSVLogger(str(folder / RAW_HISTORY), append=True)
    model = training.fit(arrays, cfg.model, cfg.train, cfg.augment, cfg.seed, [logger], cfg.distill)
    save_model_files(model, folder)
    write_expected_predictions(model, folder)
    raw = pd.read_csv(folder / RAW_HISTORY).drop_duplicates("epoch", keep="last")
    history = raw.assign(epoch=raw["epoch"] + 1)[["epoch", *training.HISTORY_METRICS]]  # MLflow counts from 1
    history.to_csv(folder / HISTORY, index=False)
    figures.save(figures.training_curves(history), folder / CURVES)
    (folder / PARAMS).write_text(yaml.safe_dump(config.to_dict(cfg), sort_keys=False))
    tags = {
        "data_manifest_sha256": data.manifest_hash(cfg.data.index_dir),
        "git_commit": provenance.git_commit(),
        "keras_backend": keras.backend.backend(),
        "trained_on": platform.node(),
    }
    (folder / TAGS).write_text(json.dumps(tags, indent=2) + "\n")
    training.clear_checkpoint(cfg.train.checkpoint_dir)
    return history
