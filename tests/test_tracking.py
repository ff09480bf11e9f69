"""MLflow helpers: params, run pointers, model download errors and the registry's aliases."""

import mlflow
import pytest
from mlflow import MlflowClient

from conftest import compose_config
from emotion import config
from emotion.errors import ModelNotFound, TrackingUnavailable
from emotion.tracking import model_io, pyfunc, registry, runs, store
from emotion.training.model import build_model


def test_flatten_nests_with_dots():
    assert config.flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}}) == {"a": 1, "b.c": [1, 2], "b.d.e": None}


def test_run_pointer_round_trip(workdir):
    store.write_run_pointer("abc", "artifacts/train_run.json")
    assert store.read_run_pointer("artifacts/train_run.json") == "abc"
    with pytest.raises(ModelNotFound, match="run the train stage first"):
        store.read_run_pointer("artifacts/none.json")


def test_local_store_keeps_artifacts_in_the_project(workdir, mlflow_store):
    runs.setup(compose_config().tracking)
    assert mlflow.get_tracking_uri() == f"sqlite:///{workdir / 'mlflow.db'}"
    with mlflow.start_run() as run:
        mlflow.log_text("x", "note.txt")
    assert (workdir / "mlartifacts" / run.info.run_id / "artifacts" / "note.txt").exists()


def test_the_experiment_opens_on_its_runs_in_mlflow_3(workdir, mlflow_store):
    """MLflow 3's UI shows an experiment without a kind as GenAI traces; old stores get the tag on next use."""
    runs.setup(compose_config().tracking)
    assert mlflow.get_experiment_by_name("fer2013").tags["mlflow.experimentKind"] == "custom_model_development"
    mlflow.create_experiment("older")
    runs.setup(compose_config("tracking.experiment=older").tracking)
    assert mlflow.get_experiment_by_name("older").tags["mlflow.experimentKind"] == "custom_model_development"


def test_runs_are_named_after_the_dvc_experiment(workdir, mlflow_store, monkeypatch):
    runs.setup(compose_config().tracking)
    monkeypatch.setenv("DVC_EXP_NAME", "quick-run")
    with runs.tracked_run(None) as run_id:
        pass
    monkeypatch.setenv("DVC_EXP_NAME", "other")
    with runs.tracked_run(run_id):  # a resumed run keeps its name
        pass
    assert MlflowClient().get_run(run_id).info.run_name == "quick-run"


def test_tracking_uri_environment_wins(workdir, monkeypatch, mlflow_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir}/other.db")
    assert runs.setup(compose_config().tracking) == f"sqlite:///{workdir}/other.db"


def test_unreachable_server_fails_fast(workdir, monkeypatch, mlflow_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(TrackingUnavailable, match="cannot reach the MLflow tracking store http://127.0.0.1:9"):
        runs.setup(compose_config().tracking)


def test_model_download_errors_say_what_to_do(workdir, mlflow_store):
    runs.setup(compose_config().tracking)
    with pytest.raises(ModelNotFound, match="'0123' is not an MLflow run id"):
        runs.download_model("0123")
    with pytest.raises(ModelNotFound, match=f"run {'0' * 32} not found in the tracking store"):
        runs.download_model("0" * 32)
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0)
    with pytest.raises(ModelNotFound, match="has no 'model' artifacts"):
        runs.download_model(run.info.run_id)


def test_champion_moves_only_to_a_better_model_on_the_same_test_images(workdir, mlflow_store, caplog):
    runs.setup(compose_config().tracking)
    model = build_model(compose_config().model)

    def logged(accuracy, test_split="a" * 64):
        with mlflow.start_run() as run:
            runs.log_model(model)
            mlflow.log_metric("test_accuracy", accuracy)
            if test_split:
                mlflow.set_tag(runs.TEST_SPLIT_TAG, test_split)
        return run.info.run_id

    def decision(run_id):
        return MlflowClient().get_run(run_id).data.tags[registry.DECISION_TAG]

    unknown, first, worse, better = logged(0.9, test_split=None), logged(0.6), logged(0.5), logged(0.7)
    elsewhere = logged(0.9, test_split="b" * 64)
    assert registry.register(unknown, "fer-emotion", 0.9) == {"candidate": 1}  # even with no champion yet
    assert "has no test_manifest_sha256 tag" in decision(unknown)
    assert registry.register(first, "fer-emotion", 0.6) == {"candidate": 2, "champion": 2}
    assert registry.register(first, "fer-emotion", 0.6) == {"candidate": 2, "champion": 2}  # same run: no new version
    with caplog.at_level("INFO"):
        assert registry.register(worse, "fer-emotion", 0.5) == {"candidate": 3}
    assert "does not beat champion version 2's 0.6000" in decision(worse) and decision(worse) in caplog.text
    assert registry.register(elsewhere, "fer-emotion", 0.9) == {"candidate": 4}
    assert "was scored on other test images" in decision(elsewhere)
    assert registry.register(better, "fer-emotion", 0.7) == {"candidate": 5, "champion": 5}
    client = MlflowClient()
    assert client.get_model_version_by_alias("fer-emotion", "champion").run_id == better
    folder = mlflow.artifacts.download_artifacts("models:/fer-emotion@champion", dst_path=str(workdir / "dl"))
    assert model_io.load_model_files(pyfunc.model_folder(folder)).count_params() == model.count_params()


def test_a_champion_without_a_recorded_test_split_is_not_compared(workdir, mlflow_store):
    """A champion registered before test splits were recorded: no accuracy is comparable with it."""
    runs.setup(compose_config().tracking)
    logged = []
    for split in (None, "a" * 64):
        with mlflow.start_run() as run:
            runs.log_model(build_model(compose_config().model))
            if split:
                mlflow.set_tag(runs.TEST_SPLIT_TAG, split)
        logged.append(run.info.run_id)
    registry.register(logged[0], "fer-emotion", 0.1)
    MlflowClient().set_registered_model_alias("fer-emotion", "champion", 1)
    assert registry.register(logged[1], "fer-emotion", 0.9) == {"candidate": 2}
    tags = MlflowClient().get_run(logged[1]).data.tags
    assert "has no recorded test split (import or evaluate it again" in tags[registry.DECISION_TAG]
