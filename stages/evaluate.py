"""Stage `evaluate`: score the trained run's model (or evaluate.model_dir) on the untouched test split.

For a run: logs the scores and confusion figure to it and registers the model. For a model folder (a shipped
model, to re-check its card): indexes data.source itself and only writes metrics/test.json, reports/test.json
and plots.
"""

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
    from emotion.data import dataset
    from emotion.evaluation import calibration, reports, scoring
    from emotion.inference import views
    from emotion.tracking import model_files, model_io, registry, runs, store

    cfg = config.validate(raw)
    if cfg.evaluate.model_dir:
        run_id, folder = None, cfg.evaluate.model_dir
        index = dataset.index_source(cfg.data)
        (faces_u8, label_ids), manifest = dataset.split_arrays(index, "test"), index.manifest
    else:
        runs.setup(cfg.tracking)
        run_id = store.read_run_pointer(cfg.train.run_file)
        folder = runs.download_model(run_id)
        faces_u8, label_ids = dataset.load_cache(cfg.data.index_dir, splits=("test",))["test"]
        manifest = dataset.load_manifest(cfg.data.index_dir)
    model, test_time = model_io.load_model_files(folder), views.read(folder)  # the views its users get
    probs_by_view = scoring.predict_views(model, faces_u8, cfg.evaluate.batch_size, test_time.shift_px)
    probs = probs_by_view[views.VARIANTS[test_time.scheme]]
    scores = scoring.score(label_ids, probs.argmax(axis=1))
    variants = scoring.variants(label_ids, probs_by_view, dataset.without_training_copies(manifest))
    model_ref = {"run_id": run_id} if run_id else {"model_dir": cfg.evaluate.model_dir}
    temperature, bias = model_files.calibration_of(folder)
    calibrated = calibration.test_scores(probs, label_ids, temperature, bias)
    int8 = scoring.int8_accuracies(folder, faces_u8, label_ids)  # what `auto` runs, where the model has one
    reports.write_evaluation_report(scores, variants, label_ids, probs, model_ref, cfg.evaluate, calibrated,
                                    test_time.scheme, calibration.without(probs, temperature, bias))
    if run_id:
        runs.log_scores(run_id, scores.flat() | scoring.flat_variants(variants) | calibrated | int8,
                            [cfg.evaluate.figure_file, cfg.evaluate.reliability_file], dataset.test_split_hash(manifest))
        if cfg.evaluate.register:
            log.info("registry aliases: %s", registry.register(run_id, cfg.tracking.registered_model, scores.accuracy))
    unique = variants[f"unique_{views.VARIANTS[test_time.scheme]}"]
    log.info("%s (%s): test accuracy %.4f, macro-F1 %.4f on %d images; %.4f on the %d without a copy in training; "
             "ECE %.4f (%.4f without its temperature %.3f)", next(iter(model_ref.values())), test_time.scheme,
             scores.accuracy,
             scores.macro_f1, len(label_ids), unique["accuracy"], unique["images"], calibrated["test_ece_calibrated"],
             calibrated["test_ece"], calibrated["temperature"])
    for name, accuracy in int8.items():
        log.info("%s: %.4f (%+.2f points)", name, accuracy, 100 * (accuracy - scores.accuracy))


if __name__ == "__main__":
    stage_help("evaluate")
    main()
