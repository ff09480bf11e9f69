"""Train without MLflow and write the run as an export folder (for machines without MLflow, e.g. an accelerator):
`python -m stages.train_offline +export_dir=runs/strong experiment=strong`, later `python -m stages.import_run
runs/strong --run-file artifacts/train_run.json` here. Re-running the same command resumes an interrupted fit."""

import logging

import hydra
from omegaconf import DictConfig, open_dict

from emotion.errors import user_errors_exit
from stages.entry import stage_help

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@user_errors_exit
def main(raw: DictConfig) -> None:
    from emotion import config  # here: --help starts without TensorFlow
    from emotion.data import dataset
    from emotion.training import distributed, offline, trainer

    with open_dict(raw):
        export_dir = raw.pop("export_dir", "runs/offline")
    cfg = config.validate(raw)
    cluster = distributed.connect(cfg.train)
    arrays = dataset.load_cache(cfg.data.index_dir)
    if not cluster.is_chief:  # process 0 writes the export folder
        trainer.fit_in_step(cfg, arrays, cluster)
        return
    history = offline.train_to_folder(cfg, arrays, export_dir, cluster)
    best = history.loc[history["val_accuracy"].idxmax()]
    log.info("-> %s: best val_accuracy %.3f at epoch %d", export_dir, best["val_accuracy"], best["epoch"])


if __name__ == "__main__":
    stage_help("train_offline")
    main()
