"""One tracked training run: start (or resume) the MLflow run, fit, log the model and write the training report."""

import logging

import keras
import mlflow
import numpy as np

from emotion import config, data, provenance, reports, tracking, training
from emotion.config import Config

log = logging.getLogger(__name__)


def train_tracked(
    cfg: Config, arrays: dict[str, tuple[np.ndarray, np.ndarray]], callbacks: list[keras.callbacks.Callback] = ()
) -> tuple[str, dict]:
    """Fit cfg's model on arrays inside an MLflow run and return (run id, training metrics).

    An interrupted fit with the same config and data continues in the same run from its last checkpoint, unless
    train.resume is false.
    """
    params = tracking.flatten(config.to_dict(cfg))
    data_hash = data.manifest_hash(cfg.data.index_dir)
    settings = training.fingerprint({k: v for k, v in params.items() if k != "train.resume"} | {"data": data_hash})
    if not cfg.train.resume:
        training.clear_checkpoint(cfg.train.checkpoint_dir)
    run_id = training.resumable_run(cfg.train.checkpoint_dir, settings)
    if run_id:
        log.info("resuming run %s from %s", run_id, cfg.train.checkpoint_dir)
    with mlflow.start_run(run_id=run_id) as run:
        run_id = run.info.run_id
        mlflow.log_params(params)
        mlflow.set_tags({"data_manifest_sha256": data_hash, "git_commit": provenance.git_commit()})
        training.remember_run(cfg.train.checkpoint_dir, settings, run_id)
        logger = tracking.EpochLogger(run_id)
        model = training.fit(arrays, cfg.model, cfg.train, cfg.augment, cfg.seed, [logger, *callbacks], cfg.distill)
        tracking.log_model(model)
        metrics = reports.write_training_report(run_id, cfg.train)
    training.clear_checkpoint(cfg.train.checkpoint_dir)
    return run_id, metrics
