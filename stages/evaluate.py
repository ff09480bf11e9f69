"""Stage `evaluate`: score the trained run's model on the untouched test split, log it, register the model."""

import logging

import hydra
import mlflow
from omegaconf import DictConfig

from emotion import config, data, evaluation, model_io, reports, tracking
from stages.entry import user_errors_exit

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@user_errors_exit
def main(raw: DictConfig) -> None:
    cfg = config.validate(raw)
    tracking.setup(cfg.tracking)
    run_id = tracking.read_run_pointer(cfg.train.run_file)
    model = model_io.load_model_files(tracking.download_model(run_id))
    faces_u8, label_ids = data.load_cache(cfg.data.index_dir, splits=("test",))["test"]
    predicted = evaluation.predict(model, faces_u8, cfg.evaluate.batch_size).argmax(axis=1)
    scores = evaluation.score(label_ids, predicted)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(scores.flat())
        reports.write_evaluation_report(scores, label_ids, predicted, run_id, cfg.evaluate)
    aliases = tracking.register(run_id, cfg.tracking.registered_model, scores.accuracy) if cfg.evaluate.register else {}
    log.info(
        "run %s: test accuracy %.4f, macro-F1 %.4f on %d images; registry aliases %s",
        run_id, scores.accuracy, scores.macro_f1, len(label_ids), aliases or "unchanged",
    )


if __name__ == "__main__":
    main()
