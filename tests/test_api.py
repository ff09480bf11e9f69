"""The Python API, `from emotion import EmotionRecognizer`, on the shipped reference model: the same records as the
CLI for a photo given as a path or as a BGR, RGB or grey array, ready crops, and a video with its per-face summary."""

import json

import cv2
import numpy as np
import pytest

from conftest import ROOT
from emotion import EmotionRecognizer
from emotion.data.labels import CLASS_NAMES
from emotion.data.preprocess import crop_face
from emotion.errors import UserError
from emotion.inference.models import ResolvedModel
from emotion.project_files import default_model_dir
from test_realtime import astronaut_frame

REFERENCE = ROOT / "models" / "reference"


@pytest.fixture(scope="module")
def recognizer() -> EmotionRecognizer:
    return EmotionRecognizer.from_dir(REFERENCE)  # its int8 model: ONNX Runtime


def test_a_photo_as_path_or_array_gives_one_face_with_seven_probabilities(recognizer, tmp_path):
    frame = astronaut_frame()
    cv2.imwrite(str(tmp_path / "face.png"), frame)
    from_path = recognizer.analyze(tmp_path / "face.png")
    assert len(from_path) == 1 and set(from_path[0].probs) == set(CLASS_NAMES)
    assert from_path[0].label == max(from_path[0].probs, key=from_path[0].probs.get)
    assert recognizer.analyze(frame, channels="bgr") == recognizer.analyze(frame[:, :, ::-1].copy(), channels="rgb")
    assert recognizer.analyze(frame) == from_path
    (grey,) = recognizer.analyze(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))  # BlazeFace sees colour: a grey copy moves
    assert np.abs(np.subtract(grey.box, from_path[0].box)).max() <= 6  # the box by a few pixels


def test_classify_takes_ready_crops(recognizer):
    gray = cv2.cvtColor(astronaut_frame(), cv2.COLOR_BGR2GRAY)
    face, (found,) = recognizer.analyze(gray)[0], recognizer.detector.detect(gray)
    probs = recognizer.classify(crop_face(gray, found.box, found.angle)[np.newaxis])  # turned when the head tilts
    assert probs.shape == (1, 7)
    np.testing.assert_allclose(probs[0], [face.probs[name] for name in CLASS_NAMES], atol=1e-4)
    with pytest.raises(UserError, match=r"classify takes uint8 faces of shape \(N, 48, 48\)"):
        recognizer.classify(np.zeros((2, 64, 64), np.uint8))


def test_bad_images_are_refused_in_one_line(recognizer):
    with pytest.raises(UserError, match="expected a uint8 image"):
        recognizer.analyze(np.zeros((48, 48), np.float32))
    with pytest.raises(UserError, match="channels='hsv'"):
        recognizer.analyze(astronaut_frame(), channels="hsv")


def test_a_video_gives_per_frame_records_and_a_per_face_summary(recognizer, tmp_path):
    path = tmp_path / "face.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for shift in range(6):
        writer.write(np.roll(astronaut_frame(), 4 * shift, axis=1))
    writer.release()
    records, summary = recognizer.analyze_video(path)
    assert records["frame"].tolist() == list(range(6)) and (records["face"] == 0).all()
    assert np.allclose(records[list(CLASS_NAMES)].sum(axis=1), 1, atol=1e-3)
    assert summary["track"].nunique() == 1 and summary["share"].sum() == pytest.approx(1, abs=1e-3)


def test_without_an_mlflow_store_the_shipped_model_is_used_and_named(workdir, caplog):
    recognizer = EmotionRecognizer.from_mlflow()
    assert recognizer.backend.name == "litert-int8"
    assert f"no MLflow store at {workdir / 'mlflow.db'}: using the shipped model {default_model_dir()}" in caplog.text


def test_the_recognizer_knows_which_model_it_runs(recognizer):
    card, tags = (json.loads((REFERENCE / name).read_text()) for name in ("metrics.json", "tags.json"))
    run_id = tags["exported_from_run"]  # the run the shipped folder was exported from
    assert recognizer.model == ResolvedModel(REFERENCE, run_id, "reference", None, card["accuracy"])
    assert recognizer.backend.name == "litert-int8" and recognizer.backend.test_time.scheme == "plain"

