"""End to end: `dvc exp run` in a temporary copy of the project on synthetic data, checked through MLflow."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from conftest import ROOT, compose_config, copy_project, run, stage_command
from emotion.data import dataset
from emotion.data.labels import CLASS_NAMES
from emotion.evaluation import scoring
from emotion.tracking import model_io, runs
from emotion.training.model import build_model

FIGURE_CALL = re.compile(r"plt\.subplots\(|figures\.\w+\(")  # the notebook cells that make a figure


def git_refs(root: Path) -> str:
    return subprocess.run(["git", "show-ref"], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory, kaggle_folder) -> Path:
    """A git + DVC copy of the project that has run the whole pipeline once on the synthetic data (calibrated with
    class offsets)."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    run(["dvc", "exp", "run", "-n", "smoke", "-S", f"data.source={kaggle_folder}", "-S", "train.epochs=1",
         "-S", "train.batch_size=8", "-S", "train.class_bias=true"], root)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    yield root
    mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_pipeline_logs_the_run_metrics_and_artifacts(project):
    compared = {name: json.loads((project / f"metrics/{name}.json").read_text()) for name in ("train", "test")}
    assert set(compared["train"]) == {"epochs", "best_epoch", "best_val_accuracy", "final_val_accuracy"}  # `dvc exp show`
    assert set(compared["test"]) == {"accuracy", "macro_f1", "recall_disgust"}
    test_metrics = json.loads((project / "reports/test.json").read_text())
    assert {"accuracy", "macro_f1", "weighted_f1", "run_id", "per_class", "variants"} <= set(test_metrics)
    assert compared["test"]["recall_disgust"] == test_metrics["per_class"]["disgust"]["recall"]
    assert set(test_metrics["variants"]) == {"plain", "tta_flip", "unique_plain", "unique_tta_flip"}
    assert test_metrics["variants"]["plain"]["images"] == 28  # the synthetic test split: 4 faces per class
    run = MlflowClient().get_run(test_metrics["run_id"])
    assert run.info.run_name == "smoke" == run.data.tags["dvc_experiment"]  # the DVC experiment's name
    assert run.data.tags["dvc_experiment_ref"] in git_refs(project)  # and its ref, which dvc exp run made
    assert run.data.params["train.epochs"] == "1" and run.data.params["model.filters"] == "[64, 128, 256, 512]"
    assert run.data.metrics["test_accuracy"] == pytest.approx(test_metrics["accuracy"], abs=1e-4)
    assert {"loss", "val_accuracy", "learning_rate", "test_macro_f1", "test_recall_disgust",
            "test_unique_plain_accuracy", "test_tta_flip_macro_f1", "temperature", "val_ece", "val_ece_calibrated",
            "test_ece", "test_ece_calibrated"} <= set(run.data.metrics)
    assert test_metrics["calibration"]["temperature"] == pytest.approx(run.data.metrics["temperature"], abs=1e-4)
    assert {f"class_bias_{name}" for name in CLASS_NAMES} | {"val_macro_f1_uncalibrated",
                                                             "val_macro_f1_calibrated"} <= set(run.data.metrics)
    assert {"test_macro_f1_uncalibrated", "test_macro_f1_calibrated"} <= set(test_metrics["calibration"])
    assert run.data.metrics["test_macro_f1"] == pytest.approx(test_metrics["macro_f1"], abs=1e-4)  # the headline's
    assert run.data.tags["data_manifest_sha256"] == dataset.manifest_hash(dataset.load_manifest(project / "data/index"))
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "reliability.png", "training_curves.png"} <= artifacts
    model_files = {path.name for path in runs.download_model(run.info.run_id, project / "downloaded").iterdir()}
    assert model_files == {"model.json", "model.weights.h5", "calibration.json", "model.onnx", "model.int8.onnx"}
    assert json.loads((project / "artifacts/train_run.json").read_text())["run_id"] == run.info.run_id


@pytest.mark.slow
def test_logged_model_reloads_to_the_evaluated_predictions(project, tmp_path):
    run_id = json.loads((project / "reports/test.json").read_text())["run_id"]
    model = model_io.load_model_files(runs.download_model(run_id, tmp_path))
    faces_u8, _ = dataset.load_cache(project / "data/index", splits=("test",))["test"]
    predicted = np.array(CLASS_NAMES)[scoring.predict(model, faces_u8).argmax(axis=1)]
    table = pd.read_csv(project / "plots/evaluate/confusion.csv")
    assert list(table["predicted"]) == list(predicted)


@pytest.mark.slow
def test_model_is_registered_with_aliases(project):
    run_id = json.loads((project / "reports/test.json").read_text())["run_id"]
    client = MlflowClient()
    for alias in ("candidate", "champion"):
        assert client.get_model_version_by_alias("fer-emotion", alias).run_id == run_id
    tags = client.get_run(run_id).data.tags
    assert tags["test_manifest_sha256"] == dataset.test_split_hash(dataset.load_manifest(project / "data/index"))
    assert tags["champion_decision"] == "champion: the first model scored on a recorded test split"
    model_id = runs.logged_model_id(run_id)  # the version is the run's MLflow Model, its test metrics on its page
    assert client.get_model_version_by_alias("fer-emotion", "champion").source == f"models:/{model_id}"
    assert {"test_accuracy", "test_accuracy_onnx_int8"} <= {m.key for m in mlflow.get_logged_model(model_id).metrics}


@pytest.mark.slow
def test_params_come_from_conf_and_repro_is_a_no_op(project, kaggle_folder):
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["train"]["epochs"] == 1 and params["data"]["source"] == str(kaggle_folder)
    out = run(["dvc", "repro"], project)
    assert "Running stage" not in out
    assert "accuracy" in run(["dvc", "metrics", "show"], project)


@pytest.mark.slow
def test_evaluate_scores_a_model_folder(kaggle_folder, workdir):
    cfg = compose_config("model.filters=[8]", "model.block_dropout=[0.1]", "model.dense_units=8")
    model_io.save_model_files(build_model(cfg.model), workdir / "shipped")
    run(stage_command("evaluate", f"hydra.run.dir={workdir}/outputs", "evaluate.model_dir=shipped",
                      f"data.source={kaggle_folder}"), workdir, env_path=str(ROOT))
    report = json.loads((workdir / "reports/test.json").read_text())
    assert report["model_dir"] == "shipped" and 0 <= report["accuracy"] <= 1
    assert len(pd.read_csv(workdir / "plots/evaluate/confusion.csv")) == 4 * len(CLASS_NAMES)
    assert not (workdir / "mlflow.db").exists()


@pytest.fixture(scope="module")
def notebook_project(project, tmp_path_factory) -> Path:
    """A copy of the pipeline's project whose index lists one duplicate pair (the synthetic faces have none), so that
    every figure of the notebooks has something to draw; the notebooks folder is empty, as where Jupyter starts."""
    root = Path(shutil.copytree(project, tmp_path_factory.mktemp("notebooks") / "project"))
    manifest = pd.read_csv(root / "data/index/manifest.csv")
    pair = manifest.iloc[[0, -1]].assign(group=0)[["group", "sha256", "split", "label", "ref"]]
    pair.to_csv(root / "data/index/duplicates.csv", index=False)
    (root / "notebooks").mkdir()
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_data.ipynb", "02_results.ipynb"])
def test_notebook_runs_from_inside_the_project_and_shows_every_figure(notebook_project, name, tmp_path):
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "commit notebooks without outputs"
    run([sys.executable, "-m", "notebooks.run", name, "--output", str(tmp_path)], notebook_project / "notebooks",
        env_path=str(ROOT))
    code_cells = [cell for cell in nbformat.read(tmp_path / name, as_version=4).cells if cell.cell_type == "code"]
    for cell in code_cells:
        bundles = [output.get("data", {}) for output in cell.outputs]
        assert not any(b.get("text/plain", "").startswith("<Figure") and "image/png" not in b for b in bundles), (
            f"a figure shown as text, not as an image, by:\n{cell.source}")
        if FIGURE_CALL.search(cell.source):
            assert any("image/png" in b for b in bundles), f"no image from:\n{cell.source}"
    assert sum(bool(FIGURE_CALL.search(cell.source)) for cell in code_cells) >= 2
    streams = "".join(output.get("text", "") for cell in code_cells for output in cell.outputs)
    assert "Downloading artifacts" not in streams  # MLflow's progress bars, one line per update in a saved notebook


# Last: these add runs to the project's store and move its registry aliases.
@pytest.mark.slow
def test_an_experiment_dvc_runs_in_a_temporary_copy_tracks_into_the_projects_store(project, kaggle_folder):
    """--temp (as --queue) runs in .dvc/tmp/exps/<copy>, deleted afterwards: the run must land in the project's store."""
    run(["dvc", "exp", "run", "--temp", "-n", "in-temp", "-S", f"data.source={kaggle_folder}", "-S", "train.epochs=2",
         "-S", "train.batch_size=8", "-S", "seed=7"], project)
    client = MlflowClient()
    (found,) = client.search_runs([mlflow.get_experiment_by_name("fer2013").experiment_id],
                                  "attributes.run_name = 'in-temp'")
    assert found.info.status == "FINISHED" and found.data.tags["dvc_experiment"] == "in-temp"
    assert found.data.tags["dvc_experiment_ref"] in git_refs(project)
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val_accuracy")] == [1, 2]
    assert "test_accuracy" in found.data.metrics and found.info.artifact_uri.startswith((project / "mlartifacts").as_uri())
    assert (runs.download_model(found.info.run_id, project / "downloaded-in-temp") / "model.json").exists()
    assert not list((project / ".dvc/tmp/exps").glob("*/mlflow.db"))


@pytest.mark.slow
def test_two_queued_experiments_run_at_once_both_track_into_the_projects_store(project, kaggle_folder):
    for name, seed in (("q1", 3), ("q2", 5)):
        run(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"data.source={kaggle_folder}", "-S", "train.epochs=2",
             "-S", "train.batch_size=8", "-S", f"seed={seed}"], project)
    run(["dvc", "exp", "run", "--run-all", "-j", "2"], project)  # both at once, each in its own temporary copy
    client, logged = MlflowClient(), {}
    experiment = mlflow.get_experiment_by_name("fer2013").experiment_id
    for name in ("q1", "q2"):
        (found,) = client.search_runs([experiment], f"attributes.run_name = '{name}'")
        assert found.info.status == "FINISHED" and found.data.tags["dvc_experiment_ref"] in git_refs(project)
        assert [m.step for m in client.get_metric_history(found.info.run_id, "loss")] == [1, 2]
        assert {"test_accuracy", "test_ece", "temperature"} <= set(found.data.metrics)
        model_files = {path.name for path in runs.download_model(found.info.run_id, project / name).iterdir()}
        assert {"model.json", "model.weights.h5"} <= model_files
        versions = client.search_model_versions(f"run_id = '{found.info.run_id}'")
        assert [v.name for v in versions] == ["fer-emotion"]  # registered as any run is
        logged[name] = found.info.run_id
    # from DVC back to the run: a branch made of an experiment, and the workspace it is applied to, point at it
    run(["dvc", "exp", "branch", "q2", "from-q2"], project)
    shown = subprocess.run(["git", "show", "from-q2:artifacts/train_run.json"], cwd=project, capture_output=True,
                           text=True, check=True).stdout
    assert json.loads(shown)["run_id"] == logged["q2"]
    run(["dvc", "exp", "apply", "q1"], project)
    try:
        assert json.loads((project / "artifacts/train_run.json").read_text())["run_id"] == logged["q1"]
    finally:
        run(["dvc", "exp", "apply", "smoke"], project)  # the workspace as the other tests of this module expect it
