"""An ensemble is an ordinary model folder: its output the members' mean, scored by the evaluate stage, and the
teacher of the round-two student recipe (experiment=distill_ensemble)."""

import json
import os
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from conftest import ROOT, compose_config, stage_command
from emotion.data import dataset
from emotion.data.preprocess import to_model_input
from emotion.inference import views
from emotion.inference.backends import load_backend
from emotion.inference.quantization import quantize
from emotion.tracking import export, model_io, runs
from emotion.tracking.model_files import ENSEMBLE, TEST_TIME
from emotion.training import ensemble, trainer
from emotion.training.model import build_model
from stages import ensemble as ensemble_stage
from test_views import write_test_time

TINY = ("model.filters=[8]", "model.block_dropout=[0.1]", "model.dense_units=8")


@pytest.fixture
def members(workdir) -> list[str]:
    """Two small untrained models of different widths, as model folders."""
    folders = []
    for i, width in enumerate((8, 16)):
        keras.utils.set_random_seed(i)
        cfg = compose_config(f"model.filters=[{width}]", "model.block_dropout=[0.1]", "model.dense_units=8")
        folders.append(str(model_io.save_model_files(build_model(cfg.model), workdir / f"m{i}")))
    return folders


def test_the_ensemble_folder_averages_its_members(members, workdir):
    ensemble_stage.main(["ens", *members])
    assert json.loads((workdir / "ens/ensemble.json").read_text()) == {"members": members}
    assert (workdir / "ens" / model_io.EXPECTED).exists()
    faces = to_model_input(np.random.default_rng(0).integers(0, 256, (8, 48, 48), np.uint8))
    mean = np.mean([model_io.load_model_files(m).predict(faces, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model_io.load_model_files(workdir / "ens").predict(faces, verbose=0), mean, atol=1e-6)


def test_the_ensemble_runs_the_test_time_views_all_its_members_run(members, workdir):
    ensemble_stage.main(["plain", *members])
    assert views.read(workdir / "plain") == views.TestTime() and not (workdir / "plain" / TEST_TIME).exists()
    for member in members:
        write_test_time(Path(member), views.TestTime("flip"))
    ensemble_stage.main(["flip", *members])
    assert views.read(workdir / "flip") == views.TestTime("flip")
    write_test_time(Path(members[0]), views.TestTime("crops", 2))  # members that disagree: the views all run
    assert ensemble.members_test_time(members) == views.TestTime("flip")
    (Path(members[1]) / TEST_TIME).unlink()  # a member without views of its own: plain
    assert ensemble.members_test_time(members) == views.TestTime()


def test_an_ensemble_has_int8_models_that_label_as_it_does(members, workdir):
    ensemble_stage.main(["ens", *members])
    faces = np.random.default_rng(3).integers(0, 256, (64, 48, 48), np.uint8)
    quantize(workdir / "ens", faces)  # its head is the members' mean, not a Dense layer: the log of that mean
    expected = load_backend(workdir / "ens", "keras").predict(faces[:16])
    for name in ("litert-int8", "onnx-int8"):
        probs = load_backend(workdir / "ens", name).predict(faces[:16])
        assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
        np.testing.assert_allclose(probs, expected, atol=0.05)


def test_an_ensemble_folder_is_imported_into_mlflow_and_exported_back(members, workdir, mlflow_store):
    ensemble_stage.main(["ens", *members])
    write_test_time(workdir / "ens", views.TestTime("flip"))
    runs.setup(compose_config().tracking)
    run_id, aliases = export.import_run(workdir / "ens", "fer-emotion")
    assert aliases == {}  # no metrics.json: not scored, so not registered
    assert MlflowClient().get_run(run_id).data.params["ensemble.members"] == str(members)
    back = export.export_run(run_id, workdir / "back")
    assert json.loads((back / ENSEMBLE).read_text()) == {"members": members}
    assert views.read(back) == views.TestTime("flip")
    assert yaml.safe_load((back / "params.yaml").read_text()) == {"ensemble": {"members": members}}
    faces = to_model_input(np.random.default_rng(1).integers(0, 256, (4, 48, 48), np.uint8))
    np.testing.assert_array_equal(model_io.load_model_files(back).predict(faces, verbose=0),
                                  model_io.load_model_files(workdir / "ens").predict(faces, verbose=0))
    assert export.import_run(back, "fer-emotion")[0] == run_id  # the same weights: the same run


def test_one_model_is_no_ensemble(members):
    with pytest.raises(SystemExit, match="^error: an ensemble needs two or more models, got 1$"):
        ensemble_stage.main(["ens", members[0]])


@pytest.mark.slow
def test_the_evaluate_stage_scores_an_ensemble_and_a_student_learns_from_it(members, kaggle_folder, workdir):
    ensemble_stage.main(["ensembles/tiny", *members])
    subprocess.run(stage_command("evaluate", f"hydra.run.dir={workdir}/outputs", "evaluate.model_dir=ensembles/tiny",
                                 f"data.source={kaggle_folder}"), cwd=workdir, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    report = json.loads((workdir / "reports/test.json").read_text())
    assert report["model_dir"] == "ensembles/tiny" and report["calibration"]["temperature"] == 1.0
    cfg = compose_config(f"data.source={kaggle_folder}", "experiment=distill_ensemble", *TINY, "train.epochs=1",
                         "train.warmup_epochs=0", "train.batch_size=8", "train.precision=float32")
    assert cfg.distill.teacher_dir == "models/accurate" and cfg.distill.weight > 0 and cfg.distill.precompute
    cfg.distill.teacher_dir = "ensembles/tiny"
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    history = keras.callbacks.History()
    student = trainer.fit(cfg, dataset.load_cache(cfg.data.index_dir), callbacks=[history])
    assert not any(layer.name.startswith("member_") for layer in student.layers)  # one network, not the ensemble
    assert np.isfinite(history.history["loss"]).all() and "val_accuracy" in history.history
