"""Test-time views: a model folder's own scheme reaches every inference path (backends, recognizer, batch workers),
can be overridden, and a broken test_time.json says what to do."""

import json

import numpy as np
import pytest

from emotion.config import RealtimeConfig
from emotion.errors import ConfigError, ModelInvalid
from emotion.inference import views
from emotion.inference.backends import FACES_PER_CALL, Backend, ModelFile, file_backend, load_backend
from emotion.inference.recognizer import EmotionRecognizer
from emotion.project_files import project_path
from emotion.tracking.model_files import INT8_TFLITE, TEST_TIME

EFFICIENT = project_path("models/efficient")  # trained with model.test_time=flip


def write_test_time(folder, test_time: views.TestTime) -> None:
    """A model folder's test_time.json, as the train stage writes it (model_io.save_model_files)."""
    (folder / TEST_TIME).write_text(json.dumps(views.record(test_time)))


@pytest.fixture
def faces():
    return np.random.default_rng(0).integers(0, 256, (5, 48, 48), np.uint8)


def test_the_shipped_default_is_labelled_with_its_own_flip_views_on_every_backend(faces):
    assert views.read(EFFICIENT) == views.TestTime("flip")
    for name in ("litert-int8", "onnx-int8"):
        plain = load_backend(EFFICIENT, name, "plain")
        own = load_backend(EFFICIENT, name)
        assert (own.test_time.scheme, plain.test_time.scheme) == ("flip", "plain")
        np.testing.assert_allclose(own.predict(faces), (plain.predict(faces) + plain.predict(faces[:, :, ::-1])) / 2,
                                   atol=1e-6)


def test_the_recognizer_and_the_batch_workers_run_the_views_asked_for(faces):
    flip = EmotionRecognizer.from_dir(EFFICIENT).classify(faces)
    plain = EmotionRecognizer.from_dir(EFFICIENT, cfg=RealtimeConfig(test_time="plain")).classify(faces)
    assert not np.allclose(flip, plain)
    worker = file_backend(ModelFile((EFFICIENT / INT8_TFLITE).read_bytes(), views.TestTime("flip")))
    np.testing.assert_allclose(worker.predict(faces), flip, atol=1e-6)


def test_crops_need_a_model_that_crops_and_a_bad_file_names_itself(tmp_path):
    with pytest.raises(ConfigError, match="test-time crops need a model that crops its input"):
        views.chosen(EFFICIENT, "crops")
    with pytest.raises(ConfigError, match=r"realtime.test_time='mirror': use model \(the model's own\) or one of"):
        RealtimeConfig(test_time="mirror")
    (tmp_path / TEST_TIME).write_text(json.dumps({"scheme": "mirror"}))
    with pytest.raises(ModelInvalid, match=r"test_time.json: not a test-time scheme .+ or delete it for plain$"):
        views.read(tmp_path)
    assert views.record(views.TestTime()) is None  # plain without crops: no file
    write_test_time(tmp_path, views.TestTime("crops", 2))
    assert views.read(tmp_path) == views.TestTime("crops", 2) and views.chosen(tmp_path, "flip").shift_px == 0


def test_many_faces_go_through_the_model_a_call_at_a_time_with_the_same_probabilities():
    class Recording(Backend):  # a fake model: its probabilities depend on each face alone
        calls = []

        def run(self, faces_u8):
            self.calls.append(len(faces_u8))
            means = faces_u8.reshape(len(faces_u8), -1).mean(axis=1, keepdims=True) / 255
            return np.hstack([means, 1 - means, np.zeros((len(faces_u8), 5))])

    backend = Recording()
    backend.test_time = views.TestTime("crops", 2)
    faces = np.random.default_rng(1).integers(0, 256, (FACES_PER_CALL * 2 + 3, 48, 48), np.uint8)
    probs = backend.predict(faces)
    assert backend.calls == [10 * FACES_PER_CALL, 10 * FACES_PER_CALL, 10 * 3]  # 10 views of each face
    np.testing.assert_allclose(probs, backend.test_time.predict(backend.run, faces), atol=1e-12)
