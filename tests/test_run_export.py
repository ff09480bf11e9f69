"""A run exported to a folder and imported into another MLflow store keeps its params, history, scores and model."""

import json

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import compose_config
from emotion import config
from emotion.errors import ModelNotFound
from emotion.evaluation import scoring
from emotion.tracking import export, model_io, runs
from emotion.training.model import build_model

SMALL = ("model.filters=[8]", "model.block_dropout=[0.1]", "model.dense_units=8")


def test_unflatten_restores_types():
    flat = config.flatten(config.to_dict(compose_config()))
    assert export.unflatten({k: str(v) for k, v in flat.items()}) == config.to_dict(compose_config())


def test_export_then_import_into_a_fresh_store(workdir, mlflow_store, monkeypatch):
    cfg = compose_config(*SMALL)
    runs.setup(cfg.tracking)
    model = build_model(cfg.model)
    scores = scoring.score(np.arange(14) % 7, np.arange(14) % 7)
    with mlflow.start_run() as run:
        mlflow.log_params(config.flatten(config.to_dict(cfg)))
        for epoch in (1, 2):
            mlflow.log_metrics({"loss": 2.0 / epoch, "accuracy": 0.3 * epoch, "val_loss": 2.1 / epoch,
                                "val_accuracy": 0.2 * epoch, "learning_rate": 5e-4}, step=epoch)
        runs.log_model(model)
        mlflow.set_tags({"data_manifest_sha256": "abc", runs.TEST_SPLIT_TAG: "def"})
    folder = export.export_run(run.info.run_id, workdir / "export")
    report = {"accuracy": scores.accuracy, "macro_f1": scores.macro_f1, "weighted_f1": scores.weighted_f1,
              "per_class": scores.per_class, "confusion_matrix": scores.confusion.tolist()}
    (folder / "metrics.json").write_text(json.dumps(report))

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir}/fresh.db")
    runs.setup(cfg.tracking)
    run_id, aliases = export.import_run(folder, "fer-emotion")
    assert aliases == {"candidate": 1, "champion": 1}
    imported = MlflowClient().get_run(run_id)
    assert imported.data.params["model.filters"] == "[8]" and imported.data.tags["data_manifest_sha256"] == "abc"
    assert imported.data.metrics["test_accuracy"] == 1.0 and imported.data.metrics["test_recall_disgust"] == 1.0
    assert [m.value for m in MlflowClient().get_metric_history(run_id, "val_accuracy")] == pytest.approx([0.2, 0.4])
    reloaded = model_io.load_model_files(runs.download_model(run_id, workdir / "dl"))
    x = np.random.default_rng(0).random((2, 48, 48, 1), dtype=np.float32)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    MlflowClient().delete_tag(run_id, runs.TEST_SPLIT_TAG)  # as imported before test splits were recorded
    assert export.import_run(folder, "fer-emotion") == (run_id, {"candidate": 1, "champion": 1})
    assert MlflowClient().get_run(run_id).data.tags[runs.TEST_SPLIT_TAG] == "def"  # the folder's tags again


def test_import_names_what_is_missing(workdir):
    with pytest.raises(ModelNotFound, match="missing model.json"):
        export.import_run(workdir, "fer-emotion")
    for name in ("model.json", "model.weights.h5"):
        (workdir / name).touch()
    with pytest.raises(ModelNotFound, match=r"missing params.yaml; .* \(an ensemble folder, ensemble.json instead\)$"):
        export.import_run(workdir, "fer-emotion")
