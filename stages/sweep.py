"""Stage `sweep`: an Optuna study over conf/sweep's search space, each trial a training run nested under the study's
MLflow run. Workers on several machines share one study through one storage (sweep.storage); not a DVC stage."""

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from emotion.errors import user_errors_exit
from stages.entry import stage_help

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@user_errors_exit
def main(raw: DictConfig) -> None:
    from emotion import config  # here: --help starts without TensorFlow
    from emotion.data import dataset
    from emotion.tracking import runs
    from emotion.training import sweep

    cfg = config.validate(raw)
    arrays = dataset.load_cache(cfg.data.index_dir)
    runs.setup(cfg.tracking)
    job = HydraConfig.get()
    base = list(job.overrides.task)  # each trial: this command line, then the trial's parameters
    study, best = sweep.run(cfg, arrays,
                            lambda trial_overrides: config.validate(hydra.compose(job.job.config_name,
                                                                                  [*base, *trial_overrides])))
    summary = f"best trial {best.number}: val_accuracy {best.value:.3f}, {best.params}" if best else "no complete trial"
    log.info("study %s: %d trials in all; %s", study.study_name, len(study.trials), summary)


if __name__ == "__main__":
    stage_help("sweep")
    main()
