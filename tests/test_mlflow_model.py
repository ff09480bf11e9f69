"""The registered model is a real MLflow Model: mlflow.pyfunc.load_model and `mlflow models serve` on
models:/fer-emotion@champion label faces and images as EmotionRecognizer does; runs logged before (loose files)
still load; export -> import keeps it."""

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import ROOT, compose_config
from emotion import EmotionRecognizer
from emotion.config import TrackingConfig
from emotion.data.labels import CLASS_NAMES
from emotion.tracking import export, model_io, pyfunc, registry, runs
from emotion.tracking.model_files import INT8, ONNX, probe_faces
from services import Process, free_port
from test_realtime import astronaut_frame

REFERENCE = ROOT / "models" / "reference"
CHAMPION = "models:/fer-emotion@champion"


@dataclass
class Store:
    uri: str
    run_id: str
    folder: Path  # where the tests may write

    def activate(self) -> None:
        mlflow.set_tracking_uri(self.uri)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """models/reference imported into a fresh SQLite store (its champion), as a new user does first."""
    folder = tmp_path_factory.mktemp("mlflow-model")
    uri = f"sqlite:///{folder}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        runs.setup(TrackingConfig())
        run_id, aliases = export.import_run(REFERENCE, "fer-emotion")
    assert aliases == {"candidate": 1, "champion": 1}
    yield Store(uri, run_id, folder)
    mlflow.set_tracking_uri(None)


def png_base64(frame_bgr: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", frame_bgr)[1].tobytes()).decode()


def test_the_champion_labels_faces_and_images_as_the_recognizer_does(store):
    store.activate()
    model = mlflow.pyfunc.load_model(CHAMPION)
    recognizer = EmotionRecognizer.from_dir(REFERENCE)
    faces = probe_faces()
    table = model.predict(faces)
    assert list(table.columns) == list(pyfunc.COLUMNS) and list(table["input"]) == ["face"] * len(faces)
    np.testing.assert_allclose(table[list(CLASS_NAMES)].to_numpy(), recognizer.classify(faces), atol=1e-5)
    assert list(table["label"]) == [CLASS_NAMES[i] for i in recognizer.classify(faces).argmax(axis=1)]

    frame = astronaut_frame()
    table = model.predict(np.empty((0, 48, 48), np.uint8), params={"images": [png_base64(frame)]})
    (face,) = recognizer.analyze(frame)
    assert table.to_dict("records") == [{"input": "image", "item": 0, **dict(zip("xywh", face.box)),
                                         "label": face.label, "confidence": face.confidence, **face.probs}]

    onnx = model.predict(faces, params={"backend": "onnx"})[list(CLASS_NAMES)].to_numpy()
    np.testing.assert_allclose(onnx, EmotionRecognizer.from_dir(REFERENCE, "onnx").classify(faces), atol=1e-5)


def test_the_signature_and_params_refuse_bad_input_with_mlflows_errors(store):
    store.activate()
    model = mlflow.pyfunc.load_model(CHAMPION)
    with pytest.raises(MlflowException, match=r"Shape of input \(2, 40, 40\) does not match expected shape"):
        model.predict(np.zeros((2, 40, 40), np.uint8))
    with pytest.raises(MlflowException, match=r"images\[0\] is not base64"):
        model.predict(probe_faces(), params={"images": ["not an image!"]})
    with pytest.raises(MlflowException, match=r"images\[0\]: the upload is not an image"):
        model.predict(probe_faces(), params={"images": [base64.b64encode(b"hello").decode()]})
    with pytest.raises(MlflowException, match="backend"):
        model.predict(probe_faces(), params={"backend": "cuda"})


def test_the_mlflow_model_holds_the_files_a_signature_and_what_inference_needs(store):
    store.activate()
    folder = runs.download_model(store.run_id, store.folder / "download")
    assert {"model.json", "model.weights.h5", ONNX, INT8, "metrics.json"} <= {p.name for p in folder.iterdir()}
    info = mlflow.models.get_model_info(CHAMPION)
    assert info.signature.inputs.to_dict() == pyfunc.signature().inputs.to_dict()
    requirements = (folder.parents[1] / "requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "tensorflow" not in requirements and "keras" not in requirements
    logged = mlflow.get_logged_model(runs.logged_model_id(store.run_id))
    assert logged.params["model.filters"] and {m.key for m in logged.metrics} >= {"test_accuracy", "test_macro_f1"}


def test_loading_and_predicting_import_no_tensorflow(store, tmp_path):
    """In a fresh process, outside the project: the model's own copy of the code, ONNX Runtime, no TensorFlow."""
    script = ("import sys, numpy as np, mlflow; "
              f"model = mlflow.pyfunc.load_model({CHAMPION!r}); "
              "print(model.predict(np.zeros((1, 48, 48), np.uint8))['label'][0]); "
              "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=os.environ | {"MLFLOW_TRACKING_URI": store.uri, "PYTHONPATH": ""}).stdout.split("\n")
    assert out[0] in CLASS_NAMES and out[1] == "[]"


def test_a_run_logged_as_loose_files_still_loads(store, tmp_path, monkeypatch):
    """A run from before the model was an MLflow Model: its files under the run's 'model' artifacts."""
    monkeypatch.chdir(tmp_path)  # the model cache
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    store.activate()
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(REFERENCE), artifact_path=runs.MODEL_ARTIFACTS)
    assert runs.logged_model_id(run.info.run_id) is None
    folder = runs.download_model(run.info.run_id, tmp_path / "download")
    assert (folder / "model.json").exists() and not (folder / "MLmodel").exists()
    recognizer = EmotionRecognizer.from_mlflow(run_id=run.info.run_id, tracking=TrackingConfig())
    np.testing.assert_allclose(recognizer.classify(probe_faces()),
                               EmotionRecognizer.from_dir(REFERENCE).classify(probe_faces()), atol=1e-6)
    name = "old-layout"
    registry.register(run.info.run_id, name, 0.5)
    assert MlflowClient().get_model_version(name, "1").source == f"runs:/{run.info.run_id}/model"


def test_export_then_import_round_trips_the_mlflow_model(store, tmp_path, monkeypatch):
    store.activate()
    folder = export.export_run(store.run_id, tmp_path / "exported")
    (folder / "metrics.json").write_text((REFERENCE / "metrics.json").read_text())
    before = mlflow.pyfunc.load_model(CHAMPION).predict(probe_faces())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/fresh.db")
    runs.setup(TrackingConfig())
    run_id, aliases = export.import_run(folder, "fer-emotion")
    assert aliases == {"candidate": 1, "champion": 1} and run_id != store.run_id
    after = mlflow.pyfunc.load_model(CHAMPION).predict(probe_faces())
    assert after.equals(before)


def test_a_trained_run_logs_onnx_and_an_int8_model_calibrated_on_training_faces(workdir, mlflow_store):
    from emotion.training.model import build_model

    cfg = compose_config("model.filters=[8]", "model.block_dropout=[0.1]", "model.dense_units=8")
    runs.setup(cfg.tracking)
    faces = np.random.default_rng(0).integers(0, 256, (64, 48, 48), np.uint8)
    model = build_model(cfg.model)
    with mlflow.start_run() as run:
        model_id = runs.log_model(model, {"temperature": 1.5, "val_ece": 0.1}, {"scheme": "flip", "shift_px": 0},
                                  faces, {"model.filters": "[8]"})
    folder = runs.download_model(run.info.run_id, workdir / "download")
    assert {ONNX, INT8, "calibration.json", "test_time.json"} <= {p.name for p in folder.iterdir()}
    assert runs.logged_model_id(run.info.run_id) == model_id
    assert {m.key: m.value for m in mlflow.get_logged_model(model_id).metrics}["val_ece"] == pytest.approx(0.1)
    np.testing.assert_allclose(model_io.load_model_files(folder).predict(np.zeros((1, 48, 48, 1)), verbose=0),
                               model.predict(np.zeros((1, 48, 48, 1)), verbose=0), atol=1e-6)


class ModelServer(Process):
    """`mlflow models serve` on 127.0.0.1, in the current environment (--env-manager local)."""

    def __init__(self, model_uri: str, folder: Path, tracking_uri: str):
        super().__init__("mlflow models serve", folder / "models-serve.log")
        self.port = free_port()
        self.launch([sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
                     "-h", "127.0.0.1", "-p", str(self.port)],
                    env=os.environ | {"MLFLOW_TRACKING_URI": tracking_uri,  # it runs uvicorn from the environment
                                      "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})

    def post(self, body: dict) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/invocations", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False


@pytest.mark.services
def test_mlflow_models_serve_answers_invocations_with_the_same_labels(store):
    store.activate()
    server = ModelServer(CHAMPION, store.folder, store.uri)
    try:
        server.wait_until(server.ready)
        faces = probe_faces()
        answer = server.post({"inputs": faces.tolist()})["predictions"]
        expected = mlflow.pyfunc.load_model(CHAMPION).predict(faces)
        assert [row["label"] for row in answer] == list(expected["label"])
        np.testing.assert_allclose([[row[c] for c in CLASS_NAMES] for row in answer],
                                   expected[list(CLASS_NAMES)].to_numpy(), atol=1e-5)
        frame = astronaut_frame()
        answer = server.post({"inputs": faces[:1].tolist(), "params": {"images": [png_base64(frame)]}})["predictions"]
        assert [row["input"] for row in answer] == ["face", "image"]
        assert answer[1]["label"] == EmotionRecognizer.from_dir(REFERENCE).analyze(frame)[0].label
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.post({"inputs": np.zeros((1, 40, 40), np.uint8).tolist()})
        assert refused.value.code == 400 and "does not match expected shape" in refused.value.read().decode()
    finally:
        server.stop()
