"""Stage `train`: fit the configured model on the index and record the run in MLflow; resumes if interrupted."""

import logging

import hydra
from omegaconf import DictConfig

from stages.entry import stage_help, user_errors_exit

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@user_errors_exit
def main(raw: DictConfig) -> None:
    # imported here: --help starts without TensorFlow
    from emotion import config, data, distributed, tracked_training, tracking, training

    cfg = config.validate(raw)
    cluster = distributed.connect(cfg.train)
    arrays = data.load_cache(cfg.data.index_dir)
    if not cluster.is_chief:  # process 0 tracks the run and writes the outputs
        training.fit_in_step(cfg, arrays, cluster)
        return
    tracking.setup(cfg.tracking)
    run_id, metrics = tracked_training.train_tracked(cfg, arrays, cluster=cluster)
    tracking.write_run_pointer(run_id, cfg.train.run_file)
    log.info("run %s: best val_accuracy %.3f at epoch %d", run_id, metrics["best_val_accuracy"], metrics["best_epoch"])


if __name__ == "__main__":
    stage_help("train")
    main()
