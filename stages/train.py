"""Stage `train`: fit the configured model on the index and record the run in MLflow; resumes if interrupted."""

import logging

import hydra
from omegaconf import DictConfig

from emotion.errors import user_errors_exit
from stages.entry import stage_help

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@user_errors_exit
def main(raw: DictConfig) -> None:
    # imported here: --help starts without TensorFlow
    from emotion import config
    from emotion.data import dataset
    from emotion.tracking import runs, store
    from emotion.training import distributed, tracked, trainer

    cfg = config.validate(raw)
    cluster = distributed.connect(cfg.train)
    arrays = dataset.load_cache(cfg.data.index_dir)
    if not cluster.is_chief:  # process 0 tracks the run and writes the outputs
        trainer.fit_in_step(cfg, arrays, cluster)
        return
    runs.setup(cfg.tracking)
    run_id, metrics = tracked.train_tracked(cfg, arrays, cluster=cluster)
    store.write_run_pointer(run_id, cfg.train.run_file)
    log.info("run %s: best val_accuracy %.3f at epoch %d", run_id, metrics["best_val_accuracy"], metrics["best_epoch"])


if __name__ == "__main__":
    stage_help("train")
    main()
