"""Every model shipped under models/: it reloads, gives its recorded outputs, and (with the real data) scores
what its card says."""

import json
import re

import numpy as np
import pytest

from conftest import REAL_DATA, ROOT, compose_config
from emotion.data import dataset
from emotion.data.preprocess import to_model_input
from emotion.evaluation import scoring
from emotion.inference import views
from emotion.inference.backends import load_backend
from emotion.tracking import model_files, model_io, runs

SHIPPED = sorted(p.parent for p in (ROOT / "models").glob("*/model.json"))


def test_models_are_shipped():
    assert SHIPPED, "models/ holds no model folder"


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_reloads_to_its_recorded_predictions(folder):
    model = model_io.load_model_files(folder)
    expected = np.array(json.loads((folder / model_io.EXPECTED).read_text()))
    probs = model.predict(to_model_input(model_files.probe_faces()), verbose=0)
    np.testing.assert_allclose(probs, expected, atol=1e-5)


@pytest.mark.parametrize("backend", ["litert-int8", "onnx-int8"])
@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_int8_models_agree_with_the_float_model(folder, backend):
    """Each shipped model has both int8 forms, and they label the probe faces as the float model does."""
    expected = np.array(json.loads((folder / model_io.EXPECTED).read_text()))
    probs = load_backend(folder, backend, "plain").predict(model_files.probe_faces())
    assert (probs.argmax(axis=1) == expected.argmax(axis=1)).all()
    np.testing.assert_allclose(probs, expected, atol=0.08)


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_card_states_the_recorded_scores(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    card = (folder / "README.md").read_text()
    assert f"{100 * metrics['accuracy']:.2f} %" in card and f"{metrics['macro_f1']:.3f}" in card


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_models_record_their_test_split(folder):
    """Importing one registers it as a champion that later runs on the same test images can compare with."""
    assert len(json.loads((folder / model_files.TAGS).read_text())[runs.TEST_SPLIT_TAG]) == 64


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_test_accuracy_is_what_the_card_says(folder):
    cfg = compose_config(f"data.source={REAL_DATA}")
    index = dataset.index_source(cfg.data)
    faces_u8, label_ids = dataset.split_arrays(index, "test")
    recorded_split = json.loads((folder / model_files.TAGS).read_text())[runs.TEST_SPLIT_TAG]
    assert dataset.test_split_hash(index.manifest) == recorded_split
    probs = scoring.predict(model_io.load_model_files(folder), faces_u8, test_time=views.read(folder))
    accuracy = scoring.score(label_ids, probs.argmax(axis=1)).accuracy
    card = float(re.search(r"test accuracy \| ([0-9.]+) %", (folder / "README.md").read_text()).group(1))
    assert accuracy * 100 == pytest.approx(card, abs=0.1)
