"""Training without MLflow into an export folder, resumed after an interruption, then imported into MLflow."""

import subprocess
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import ROOT
from emotion.data import dataset
from emotion.errors import TrainingInterrupted
from emotion.tracking import export, runs
from emotion.training import offline, trainer
from test_training import Interrupt


def test_offline_training_needs_no_mlflow():
    code = "import sys, emotion.training.offline, stages.train_offline; assert 'mlflow' not in sys.modules, 'mlflow imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)


@pytest.mark.slow
def test_interrupted_offline_run_resumes_and_imports(cfg, workdir, mlflow_store, monkeypatch):
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    arrays = dataset.load_cache(cfg.data.index_dir)
    cfg.train.epochs = 2
    real_fit = trainer.fit

    def fit_stopped_after_one_epoch(cfg, arrays, *, callbacks=(), **kwargs):
        return real_fit(cfg, arrays, callbacks=[*callbacks, Interrupt(after=1)], **kwargs)

    with monkeypatch.context() as patch, pytest.raises(TrainingInterrupted):
        patch.setattr(trainer, "fit", fit_stopped_after_one_epoch)
        offline.train_to_folder(cfg, arrays, "export")
    history = offline.train_to_folder(cfg, arrays, "export")
    assert history["epoch"].tolist() == [1, 2]
    assert {"model.json", "model.weights.h5", "params.yaml", "tags.json", "expected_predictions.json",
            "training_curves.png"} <= {p.name for p in (workdir / "export").iterdir()}

    runs.setup(cfg.tracking)
    run_id, aliases = export.import_run(workdir / "export", "fer-emotion")
    assert aliases == {}  # not scored yet: the evaluate stage registers it
    steps = [m.step for m in MlflowClient().get_metric_history(run_id, "val_accuracy")]
    assert steps == [1, 2] and pd.read_csv(workdir / "export/history.csv")["epoch"].tolist() == steps
