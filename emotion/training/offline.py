"""Training without MLflow (an accelerator machine has none): the run is written as an export folder that
`python -m stages.import_run` logs into any MLflow store afterwards (see run_export)."""

import json
from pathlib import Path

import pandas as pd
import yaml

from emotion.config import Config
from emotion.data import dataset
from emotion.evaluation import figures
from emotion.inference import views
from emotion.tracking.model_files import CURVES, HISTORY, PARAMS, TAGS
from emotion.tracking.model_io import save_model_files, write_expected_predictions
from emotion.training import checkpoints, trainer
from emotion.training.distributed import LOCAL, Cluster


def train_to_folder(cfg: Config, arrays: dict, folder: str | Path, cluster: Cluster = LOCAL) -> pd.DataFrame:
    """Fit (resuming from cfg.train.checkpoint_dir), then write model, params, history, tags and curves to folder.
    On a cluster this is process 0's part (trainer.fit_in_step is the others')."""
    folder = Path(folder)
    data_hash = dataset.manifest_hash(dataset.load_manifest(cfg.data.index_dir))
    settings = checkpoints.settings_of(cfg, data_hash)
    with checkpoints.CheckpointFolder(cfg.train.checkpoint_dir, settings, cfg.train.resume, cluster) as checkpoint:
        model = trainer.fit(cfg, arrays, checkpoint=checkpoint, cluster=cluster)
        folder.mkdir(parents=True, exist_ok=True)
        test_time = views.record(views.of_model(cfg.model))
        save_model_files(model, folder, trainer.calibrate(model, arrays, cfg.train), test_time)
        write_expected_predictions(model, folder)
        history = checkpoint.history_table(trainer.history_metrics(cfg.train))
        history.to_csv(folder / HISTORY, index=False)
        figures.save(figures.training_curves(history), folder / CURVES)
        (folder / PARAMS).write_text(yaml.safe_dump(checkpoints.logged_config(cfg), sort_keys=False))
        (folder / TAGS).write_text(json.dumps(checkpoints.provenance_tags(data_hash), indent=2) + "\n")
        checkpoint.finish()
    return history
