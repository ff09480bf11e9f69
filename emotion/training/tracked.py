"""A training run tracked in MLflow: checkpointed fit inside an MLflow run, model logged, training report written."""

import logging

import keras
import numpy as np

from emotion import config
from emotion.config import Config
from emotion.data import dataset
from emotion.evaluation import reports
from emotion.inference import views
from emotion.tracking import runs
from emotion.tracking.model_files import CURVES
from emotion.training import checkpoints, trainer
from emotion.training.distributed import LOCAL, Cluster

log = logging.getLogger(__name__)


def train_tracked(
    cfg: Config, arrays: dict[str, tuple[np.ndarray, np.ndarray]], callbacks: list[keras.callbacks.Callback] = (),
    tags: dict[str, str] | None = None, cluster: Cluster = LOCAL,
) -> tuple[str, dict]:
    """Fit cfg's model on arrays inside an MLflow run and return (run id, training metrics).

    An interrupted fit with the same config and data continues in the same run from its last epoch checkpoint,
    unless train.resume is false; a run left behind by a dead process is marked KILLED. tags go on a new run from
    its start (a sweep trial's parent and number). On a cluster this is process 0's part (trainer.fit_in_step is
    the others').
    """
    data_hash = dataset.manifest_hash(dataset.load_manifest(cfg.data.index_dir))
    settings = checkpoints.settings_of(cfg, data_hash)
    params = config.flatten(checkpoints.logged_config(cfg))
    with checkpoints.CheckpointFolder(cfg.train.checkpoint_dir, settings, cfg.train.resume, cluster) as checkpoint:
        if checkpoint.abandoned_run_id:
            runs.mark_abandoned(checkpoint.abandoned_run_id)
        with runs.tracked_run(checkpoint.run_id, tags) as run_id:
            if checkpoint.run_id is None:
                runs.log_run_info(params, checkpoints.provenance_tags(data_hash))
                checkpoint.bind(run_id)
            else:
                log.info("continuing MLflow run %s", run_id)
                runs.log_epochs(run_id, checkpoint.history)  # epochs checkpointed but not logged before the stop
            model = trainer.fit(cfg, arrays, callbacks=[runs.EpochLogger(run_id), *callbacks], checkpoint=checkpoint,
                                cluster=cluster)
            test_time = views.record(views.of_model(cfg.model))
            runs.log_model(model, trainer.calibrate(model, arrays, cfg.train), test_time, arrays["train"][0], params)
            history = checkpoint.history_table(trainer.history_metrics(cfg.train))  # as logged, without asking MLflow
            metrics, curves = reports.write_training_report(history, cfg.train)
            runs.log_figure(curves, CURVES)
        checkpoint.finish()
    return run_id, metrics
