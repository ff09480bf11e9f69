"""A training run tracked in MLflow: checkpointed fit inside an MLflow run, model logged, training report written."""

import logging

import keras
import numpy as np

from emotion import config, data, reports, runs, tracking, training
from emotion.config import Config
from emotion.distributed import LOCAL, Cluster
from emotion.inference import views
from emotion.model_io import CURVES

log = logging.getLogger(__name__)


def train_tracked(
    cfg: Config, arrays: dict[str, tuple[np.ndarray, np.ndarray]], callbacks: list[keras.callbacks.Callback] = (),
    tags: dict[str, str] | None = None, cluster: Cluster = LOCAL,
) -> tuple[str, dict]:
    """Fit cfg's model on arrays inside an MLflow run and return (run id, training metrics).

    An interrupted fit with the same config and data continues in the same run from its last epoch checkpoint,
    unless train.resume is false; a run left behind by a dead process is marked KILLED. tags go on a new run from
    its start (a sweep trial's parent and number). On a cluster this is process 0's part (training.fit_in_step is
    the others').
    """
    data_hash = data.manifest_hash(cfg.data.index_dir)
    settings = runs.settings_of(cfg, data_hash)
    with runs.TrainingRun(cfg.train.checkpoint_dir, settings, cfg.train.resume, cluster) as run:
        if run.abandoned_run_id:
            tracking.mark_abandoned(run.abandoned_run_id)
        with tracking.tracked_run(run.run_id, tags) as run_id:
            if run.run_id is None:
                tracking.log_run_info(config.flatten(runs.logged_config(cfg)), runs.provenance_tags(data_hash))
                run.bind(run_id)
            else:
                log.info("continuing MLflow run %s", run_id)
                tracking.log_epochs(run_id, run.history)  # epochs checkpointed but not logged before the stop
            model = training.fit(arrays, cfg.model, cfg.train, cfg.augment, cfg.seed,
                                 [tracking.EpochLogger(run_id), *callbacks], cfg.distill, run, cluster)
            tracking.log_model(model, training.calibrate(model, arrays, cfg.train), views.of_model(cfg.model))
            history = run.history_table(training.history_metrics(cfg.train))  # as logged, without asking MLflow
            metrics, curves = reports.write_training_report(history, cfg.train)
            tracking.log_figure(curves, CURVES)
        run.finish()
    return run_id, metrics
