"""Training without MLflow (an accelerator machine has none): the run is written as an export folder that
`python -m stages.import_run` logs into any MLflow store afterwards (see run_export)."""

import json
from pathlib import Path

import pandas as pd
import yaml

from emotion import data, figures, runs, training
from emotion.config import Config
from emotion.distributed import LOCAL, Cluster
from emotion.inference import views
from emotion.model_io import CURVES, HISTORY, PARAMS, TAGS, save_model_files, write_expected_predictions


def train_to_folder(cfg: Config, arrays: dict, folder: str | Path, cluster: Cluster = LOCAL) -> pd.DataFrame:
    """Fit (resuming from cfg.train.checkpoint_dir), then write model, params, history, tags and curves to folder.
    On a cluster this is process 0's part (training.fit_in_step is the others')."""
    folder = Path(folder)
    data_hash = data.manifest_hash(cfg.data.index_dir)
    settings = runs.settings_of(cfg, data_hash)
    with runs.TrainingRun(cfg.train.checkpoint_dir, settings, cfg.train.resume, cluster) as run:
        model = training.fit(arrays, cfg.model, cfg.train, cfg.augment, cfg.seed, [], cfg.distill, run, cluster)
        folder.mkdir(parents=True, exist_ok=True)
        save_model_files(model, folder, training.calibrate(model, arrays, cfg.train), views.of_model(cfg.model))
        write_expected_predictions(model, folder)
        history = run.history_table(training.history_metrics(cfg.train))
        history.to_csv(folder / HISTORY, index=False)
        figures.save(figures.training_curves(history), folder / CURVES)
        (folder / PARAMS).write_text(yaml.safe_dump(runs.logged_config(cfg), sort_keys=False))
        (folder / TAGS).write_text(json.dumps(runs.provenance_tags(data_hash), indent=2) + "\n")
        run.finish()
    return history
