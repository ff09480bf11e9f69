"""Stage `index`: read the FER2013 source, reject bad images, write manifest, array cache, report and plots."""

import logging

import hydra
from omegaconf import DictConfig

from emotion.errors import user_errors_exit
from stages.entry import stage_help

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@user_errors_exit
def main(raw: DictConfig) -> None:
    from emotion import config  # here: --help starts without TensorFlow
    from emotion.data import dataset, index_report

    cfg = config.validate(raw)
    index = dataset.index_source(cfg.data)
    out = dataset.write_index(index, cfg.data.index_dir)
    report = index_report.write_index_report(index, cfg.data)
    log.info(
        "indexed %s images (train %s, val %s, test %s), %d rejected -> %s",
        f"{len(index.manifest):,}", *(f"{report['images'][s]:,}" for s in dataset.ALL_SPLITS), len(index.rejects), out,
    )


if __name__ == "__main__":
    stage_help("index")
    main()
