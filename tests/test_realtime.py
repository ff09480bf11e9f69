"""Realtime labelling, headless: a real face photo (scikit-image's astronaut) as image and video, a small
untrained model logged to a temporary MLflow store, and every error a user can hit."""

import json
import re
import subprocess
import sys

import cv2
import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
import skimage.data
from matplotlib import cbook
from matplotlib.backends.backend_agg import FigureCanvasAgg

from conftest import ROOT, compose_config
from emotion.data.labels import CLASS_NAMES
from emotion.errors import ModelInvalid
from emotion.evaluation import figures
from emotion.inference.backends import KerasBackend, ModelFile, OnnxBackend, export_onnx, file_backend, load_backend
from emotion.inference.models import cached_model_dir
from emotion.inference.records import FrameResult, face_result
from emotion.inference.summary import EmotionSummary
from emotion.project_files import default_model_dir
from emotion.tracking import registry, runs
from emotion.training.model import build_model
from realtime import quantize as quantize_command
from realtime import webcam
from emotion.inference.quantization import quantize

FACE_CENTER = (281, 145)  # the astronaut's face in the 640x480 frame below (checked by eye on the drawn box)
SMALL_MODEL = ("model.filters=[8,16]", "model.block_dropout=[0.1,0.1]", "model.dense_units=16")


def astronaut_frame() -> np.ndarray:
    """scikit-image's astronaut (shipped inside its wheel), head and shoulders as a webcam frames them, 640x480 BGR.
    (The whole photo's lower half holds a mission patch that BlazeFace takes for a face in some shifts.)"""
    return cv2.resize(cv2.cvtColor(skimage.data.astronaut()[:384], cv2.COLOR_RGB2BGR), (640, 480))


@pytest.fixture
def store(workdir, mlflow_store):
    """A temporary MLflow store holding one run with a small untrained model, registered as champion."""
    run_id = register_small_model(0.5)
    mlflow.set_tracking_uri(None)
    return run_id


def register_small_model(test_accuracy: float) -> str:
    """A run with a small untrained model scoring test_accuracy, registered (champion if it beats the champion)."""
    cfg = compose_config(*SMALL_MODEL)
    runs.setup(cfg.tracking)
    with mlflow.start_run() as run:
        runs.log_model(build_model(cfg.model))
        mlflow.log_metric("test_accuracy", test_accuracy)
        mlflow.set_tag(runs.TEST_SPLIT_TAG, "0" * 64)  # scored on a recorded test split: it can be champion
    registry.register(run.info.run_id, cfg.tracking.registered_model, test_accuracy)
    return run.info.run_id


@pytest.fixture
def face_image(workdir):
    cv2.imwrite(str(workdir / "face.png"), astronaut_frame())
    return workdir / "face.png"


@pytest.fixture
def face_video(workdir):
    path = workdir / "face.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for shift in range(5):
        writer.write(np.roll(astronaut_frame(), 4 * shift, axis=1))
    writer.release()
    return path


@pytest.fixture
def capsys(capsys, caplog):
    """capsys whose captured stderr also holds the log lines (pytest routes logging to caplog)."""
    caplog.set_level("INFO")
    capsys.caplog = caplog
    return capsys


def cli(capsys, *args) -> tuple[int, list[dict], str]:
    """Run the CLI in-process; return exit code, JSON lines printed, and the error message plus log."""
    capsys.caplog.clear()
    with pytest.raises(SystemExit) as exit_info:
        webcam.main([*args, "--headless"])
    out = capsys.readouterr().out
    code = exit_info.value.code if isinstance(exit_info.value.code, int) else 1
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return code, lines, f"{exit_info.value.code}\n{capsys.caplog.text}"


def test_image_face_is_found_where_it_is(store, face_image, capsys, workdir):
    code, lines, _ = cli(capsys, "--run-id", store, "--image", str(face_image), "--json", "--output", "out.png")
    assert code == 0 and len(lines) == 1 and len(lines[0]["faces"]) == 1
    face = lines[0]["faces"][0]
    x, y, w, h = face["box"]
    assert abs(x + w / 2 - FACE_CENTER[0]) < 25 and abs(y + h / 2 - FACE_CENTER[1]) < 25 and 60 < w < 160
    assert list(face["probs"]) == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert sum(face["probs"].values()) == pytest.approx(1, abs=1e-3)
    assert face["label"] == max(face["probs"], key=face["probs"].get)
    assert cv2.imread(str(workdir / "out.png")).shape == (480, 640, 3)


def test_video_gives_a_json_line_per_frame_and_a_readable_output(store, face_video, capsys, workdir):
    code, lines, _ = cli(capsys, "--run-id", store, "--video", str(face_video), "--json", "--output", "out.avi")
    assert code == 0
    assert [line["index"] for line in lines] == list(range(5))
    assert lines[1]["time_s"] == pytest.approx(0.1)
    assert all(len(line["faces"]) == 1 for line in lines)
    capture = cv2.VideoCapture(str(workdir / "out.avi"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and capture.read()[1].shape == (480, 640, 3)


def test_champion_is_the_default_model(store, face_image, capsys):
    code, lines, err = cli(capsys, "--image", str(face_image), "--json")
    assert code == 0 and f"is run {store}" in err


def test_onnx_and_keras_backends_agree(store, workdir):
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    folder = cached_model_dir(store, ".cache/models")
    faces = np.random.default_rng(1).integers(0, 256, (6, 48, 48), np.uint8)
    keras_backend = load_backend(folder, "keras")
    onnx_backend = OnnxBackend(export_onnx(keras_backend.model, folder))
    assert isinstance(keras_backend, KerasBackend) and load_backend(folder, "auto").name == "onnx"
    np.testing.assert_allclose(onnx_backend.predict(faces), keras_backend.predict(faces), atol=1e-4)


def test_cached_model_needs_no_tracking_server(store, face_image, capsys, monkeypatch):
    assert cli(capsys, "--run-id", store, "--image", str(face_image))[0] == 0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    code, _, err = cli(capsys, "--run-id", store, "--image", str(face_image))
    assert code == 0 and "using cached model" in err


class FakeCapture:
    """Stands in for cv2.VideoCapture on a camera: `frames` frames of the astronaut, or none at all."""

    def __init__(self, opened: bool = True, frames: int = 3):
        self.opened, self.left, self.released = opened, frames, False

    def __call__(self, index):
        return self

    def isOpened(self):
        return self.opened

    def read(self):
        self.left -= 1
        return (True, astronaut_frame()) if self.left >= 0 else (False, None)

    def release(self):
        self.released = True


def test_camera_frames_are_labelled_and_released(store, capsys):
    camera = FakeCapture(frames=3)
    assert webcam.run(webcam.parse_args(["--run-id", store, "--headless", "--json"]), camera) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and camera.released and lines[2]["faces"]


@pytest.mark.parametrize(
    "camera, message",
    [
        (FakeCapture(opened=False), "camera 0 cannot be opened: check it is connected"),
        (FakeCapture(frames=0), "camera 0 opened but returned no frame"),
    ],
)
def test_camera_errors(store, camera, message):
    with pytest.raises(webcam.UserError, match=message):
        webcam.run(webcam.parse_args(["--run-id", store, "--headless"]), camera)
    assert camera.released


def test_unknown_run_id(store, face_image, capsys):
    code, _, err = cli(capsys, "--run-id", "0" * 32, "--image", str(face_image))
    assert code == 1 and f"error: run {'0' * 32} not found in the tracking store" in err


def test_run_without_model_artifacts(store, face_image, capsys, workdir):
    runs.setup(compose_config().tracking)
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0)
    code, _, err = cli(capsys, "--run-id", run.info.run_id, "--image", str(face_image))
    assert code == 1 and "has no 'model' artifacts (model.json + weights): pick a run the train stage finished" in err


def test_unreachable_tracking_server(store, face_image, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    code, _, err = cli(capsys, "--image", str(face_image))
    assert code == 1 and "error: cannot reach the MLflow tracking store http://127.0.0.1:9" in err


def test_unreadable_video(store, workdir, capsys):
    (workdir / "broken.mp4").write_text("not a video")
    code, _, err = cli(capsys, "--run-id", store, "--video", "broken.mp4")
    assert code == 1 and "error: cannot read video broken.mp4" in err


def test_image_without_a_face(store, workdir, capsys):
    cv2.imwrite("wall.png", np.full((480, 640, 3), 128, np.uint8))
    code, lines, err = cli(capsys, "--run-id", store, "--image", "wall.png", "--json")
    assert code == 1 and "error: no face found in wall.png" in err and lines[0]["faces"] == []


def test_missing_gui_says_how_to_get_it(store, face_image):
    with pytest.raises(webcam.UserError, match=r"no GUI .*pip install -e '.\[gui\]', or run with --headless"):
        webcam.run(webcam.parse_args(["--run-id", store, "--image", str(face_image)]))


def test_video_summary_follows_the_face_and_sums_to_one(store, face_video, capsys, workdir):
    code, lines, err = cli(capsys, "--run-id", store, "--video", str(face_video), "--json", "--summary", "summary.csv",
                           "--output", "out.avi")
    assert code == 0
    assert re.search(r"labelled 5 frames, 5 faces, [\d.]+ FPS -> out.avi, summary.csv \(\+ .png\)", err)
    table = pd.read_csv(workdir / "summary.csv")
    assert set(table["track"]) == {0} and len(table) == 7
    assert table["share"].sum() == pytest.approx(1, abs=1e-3)
    assert table["seconds"].sum() == pytest.approx(0.5)  # 5 frames at 10 FPS
    labels = [line["faces"][0]["label"] for line in lines]
    assert table.set_index("emotion")["share"][labels[0]] == pytest.approx(labels.count(labels[0]) / 5, abs=1e-3)
    assert (workdir / "summary.png").stat().st_size > 0


def test_the_summary_plot_keeps_its_legend_off_the_title_and_the_bars():
    summary = EmotionSummary()
    for index in range(3):
        summary.add(FrameResult(index, index / 10, [face_result((10, 10, 50, 50), np.eye(7)[index])]))
    fig = figures.emotion_shares(summary.table())
    FigureCanvasAgg(fig).draw()
    renderer, (ax,) = fig.canvas.get_renderer(), fig.axes
    (legend,) = fig.legends or [ax.get_legend()]  # the figure's or the axes'
    box = legend.get_window_extent(renderer)
    assert not box.overlaps(ax.title.get_window_extent(renderer)) and not box.overlaps(ax.get_window_extent(renderer))
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
    assert [text.get_text() for text in legend.get_texts()] == list(CLASS_NAMES)


def test_the_fps_counter_is_shown_in_the_window_but_not_saved(store, face_video, workdir, monkeypatch):
    shown = []
    monkeypatch.setattr(webcam, "check_gui", lambda headless: None)
    monkeypatch.setattr(webcam.cv2, "imshow", lambda window, frame: shown.append(frame.copy()))
    monkeypatch.setattr(webcam.cv2, "waitKey", lambda delay: -1)
    monkeypatch.setattr(webcam.cv2, "destroyAllWindows", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        webcam.main(["--run-id", store, "--video", str(face_video), "--output", "out.avi"])
    corner = np.s_[:30, :60]  # where the counter goes: the video's grey margin
    source, saved = cv2.VideoCapture(str(face_video)).read()[1], cv2.VideoCapture("out.avi").read()[1]
    assert exit_info.value.code == 0 and len(shown) == 5
    assert np.abs(saved[corner].astype(int) - source[corner]).max() < 40  # JPEG noise only, no white text
    assert (shown[0][corner] == 255).all(axis=-1).sum() > 20


def test_summary_starts_a_new_track_for_a_face_elsewhere():
    summary = EmotionSummary()
    probs = np.eye(7)[3]
    for index, box in enumerate([(10, 10, 50, 50), (14, 12, 50, 50), (300, 10, 50, 50)]):
        summary.add(FrameResult(index, index / 10, [face_result(box, probs)]))
    table = summary.table()
    assert table.groupby("track")["seconds"].sum().round(3).to_dict() == {0: 0.2, 1: 0.1}


@pytest.mark.parametrize("arguments, message", [
    (["missing-model"], "error: missing-model: missing model.json and model.weights.h5"),
    ([str(ROOT / "models" / "reference"), "--index-dir", "no-index"], "error: no-index/cache.npz not found: run the "
                                                                        "index stage first")])
def test_quantizing_without_a_model_or_an_index_fails_in_one_line(arguments, message, workdir):
    with pytest.raises(SystemExit) as stop:
        quantize_command.main(arguments)
    assert str(stop.value.code).startswith(message)


def test_int8_backend_after_quantization(store, workdir):
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    folder = cached_model_dir(store, ".cache/models")
    for name, file in (("onnx-int8", "model.int8.onnx"), ("litert-int8", "model.int8.tflite")):
        with pytest.raises(webcam.UserError, match=f"has no {file}: make it with python -m realtime.quantize"):
            load_backend(folder, name)
    faces = np.random.default_rng(2).integers(0, 256, (64, 48, 48), np.uint8)
    quantize(folder, faces)
    auto, onnx_int8, fp32 = load_backend(folder, "auto"), load_backend(folder, "onnx-int8"), load_backend(folder, "onnx")
    assert (auto.name, onnx_int8.name, fp32.name) == ("litert-int8", "onnx-int8", "onnx")
    expected = fp32.predict(faces[:8])
    for int8 in (auto, onnx_int8, file_backend(ModelFile(auto.path.read_bytes())), file_backend(ModelFile(onnx_int8.path.read_bytes()))):
        probs = int8.predict(faces[:8])
        assert probs.shape == (8, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
        np.testing.assert_allclose(probs, expected, atol=0.05)


def test_broken_tflite_model_fails_in_one_line(tmp_path):
    (tmp_path / "model.int8.tflite").write_bytes(b"\x00\x00\x00\x00TFL3 not really a model")
    with pytest.raises(ModelInvalid, match="model.int8.tflite: LiteRT cannot load it .*realtime.quantize") as err:
        load_backend(tmp_path)
    assert "\n" not in str(err.value)


def test_ctrl_c_keeps_what_was_labelled(store, workdir, monkeypatch):
    camera = FakeCapture(frames=10)
    real_read = camera.read

    def read():
        if camera.left == 7:  # three frames delivered (the first one is read at start-up)
            raise KeyboardInterrupt
        return real_read()

    camera.read = read
    with monkeypatch.context() as patch, pytest.raises(SystemExit) as exit_info:
        patch.setattr(webcam.cv2, "VideoCapture", camera)
        webcam.main(["--run-id", store, "--headless", "--output", "out.avi", "--summary", "s.csv"])
    assert exit_info.value.code == 130 and camera.released
    assert int(cv2.VideoCapture("out.avi").get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert pd.read_csv("s.csv")["share"].sum() == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("run_id", ["../../x", "0" * 31 + "/", "../victim"])
def test_a_run_id_that_is_not_one_is_refused_before_touching_files(store, face_image, capsys, run_id):
    code, _, err = cli(capsys, "--run-id", run_id, "--image", str(face_image))
    assert code == 1 and f"error: {run_id!r} is not an MLflow run id (32 hex characters)" in err


def test_a_registry_answer_that_is_not_a_run_id_deletes_nothing(store, face_image, capsys, workdir, monkeypatch):
    victim = workdir / ".cache" / "victim"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("mine")
    monkeypatch.setattr(mlflow.MlflowClient, "get_model_version_by_alias",
                        lambda self, name, alias: type("Version", (), {"run_id": "../victim"})())
    code, _, err = cli(capsys, "--image", str(face_image))
    assert code == 1 and "error: '../victim' is not an MLflow run id" in err
    assert (victim / "keep.txt").read_text() == "mine"


def test_refused_or_corrupt_model_files_end_in_one_line(store, face_image, capsys, workdir):
    folder = cached_model_dir(store, ".cache/models")
    weights = (folder / "model.weights.h5").read_bytes()
    (folder / "model.weights.h5").write_bytes(weights[: len(weights) // 2])
    code, _, err = cli(capsys, "--run-id", store, "--image", str(face_image), "--backend", "keras")
    assert code == 1 and "model.weights.h5: cannot load the weights" in err and "download or export" in err

    inputs = keras.Input((48, 48, 1))
    scaled = keras.layers.Lambda(lambda t: t * 2)(inputs)  # safe mode refuses a Python lambda: code execution
    lambda_model = keras.Model(inputs, keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(scaled)))
    (folder / "model.json").write_text(lambda_model.to_json())
    lambda_model.save_weights(folder / "model.weights.h5")
    code, _, err = cli(capsys, "--run-id", store, "--image", str(face_image), "--backend", "keras")
    assert code == 1 and "model.json: Keras refuses this architecture (Requested the deserialization of a `Lambda`" in err


def test_a_truncated_video_is_labelled_up_to_where_it_breaks_and_says_so(store, face_video, capsys, workdir):
    data = face_video.read_bytes()
    truncated = workdir / "truncated.avi"
    truncated.write_bytes(data[: int(len(data) * 0.5)])
    code, lines, err = cli(capsys, "--run-id", store, "--video", str(truncated), "--json", "--output", "out.avi")
    assert code == 1 and "error: video" in err and "truncated or corrupt" in err
    assert 0 < len(lines) < 5 and cv2.VideoCapture("out.avi").read()[0]


def test_outside_a_project_the_cli_uses_the_shipped_model_and_creates_no_store(face_image, capsys, workdir):
    code, lines, err = cli(capsys, "--image", str(face_image), "--json")
    assert code == 0 and len(lines[0]["faces"]) == 1
    assert f"no MLflow store at {workdir / 'mlflow.db'}: using the shipped model {default_model_dir()}" in err
    code, _, err = cli(capsys, "--model-uri", "models:/fer-emotion@champion", "--image", str(face_image))
    assert code == 1 and "error: no MLflow store at" in err  # a model asked for by name is never replaced
    assert not (workdir / "mlflow.db").exists()


def test_a_missing_input_is_reported_before_the_model_loads(capsys, workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # loading a model would fail differently
    for flag in ("--video", "--image"):
        code, _, err = cli(capsys, "--run-id", "0" * 32, flag, "missing.file")
        assert code == 1 and "missing.file does not exist: check the path" in err


NO_KERAS = "assert not {'keras', 'tensorflow', 'mlflow'} & set(sys.modules), sorted({'keras', 'tensorflow', 'mlflow'} & set(sys.modules))"


@pytest.mark.parametrize("model", [["--model-dir", str(default_model_dir())], [],
                                   ["--model-dir", str(default_model_dir()), "--backend", "onnx-int8"]],
                         ids=["model-dir", "no-store", "onnx"])
def test_a_model_folder_with_its_int8_models_labels_without_keras(face_image, tmp_path, model):
    """The shipped model has its int8 models: labelling needs LiteRT (or ONNX Runtime) alone, and no MLflow store,
    given as a folder or used because there is no store."""
    args = [*model, "--image", str(face_image), "--json", "--headless"]
    code = f"import sys\nfrom realtime import webcam\nwebcam.run(webcam.parse_args({args!r}))\n{NO_KERAS}"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    faces = json.loads(result.stdout.splitlines()[-1])["faces"]
    assert len(faces) == 1 and set(faces[0]["probs"]) == set(CLASS_NAMES)
    assert not (tmp_path / "mlflow.db").exists()


def test_the_quick_start_labels_matplotlibs_sample_portrait_with_the_shipped_model(capsys, workdir):
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # the README's example photo
    code, lines, err = cli(capsys, "--image", str(photo), "--json", "--output", "labelled.jpg")  # no store here
    assert code == 0 and "using the shipped model" in err and len(lines[0]["faces"]) == 1 and cv2.imread("labelled.jpg").shape == (600, 512, 3)


def test_a_model_dir_without_model_files_is_refused(face_image, capsys, workdir):
    code, _, err = cli(capsys, "--model-dir", str(workdir), "--image", str(face_image))
    assert code == 1 and "missing model.json and model.weights.h5; a model folder needs" in err


def test_many_images_in_one_process_stream_a_json_line_each(store, face_image, capsys, workdir):
    photos = workdir / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), astronaut_frame())
    cv2.imwrite(str(photos / "b.jpg"), np.roll(astronaut_frame(), 8, axis=1))
    cv2.imwrite(str(photos / "wall.png"), np.full((480, 640, 3), 128, np.uint8))
    (photos / "notes.txt").write_text("not an image")
    code, lines, err = cli(capsys, "--run-id", store, "--image", str(photos), str(workdir / "face.*"), "--json",
                           "--output", "labelled")
    assert code == 0
    assert [line["path"] for line in lines] == [str(photos / n) for n in ("a.png", "b.jpg", "wall.png")] + [
        str(face_image)]
    assert [len(line["faces"]) for line in lines] == [1, 1, 0, 1]
    assert "no face found in" in err and "wall.png" in err
    assert sorted(p.name for p in (workdir / "labelled").iterdir()) == ["a.png", "b.jpg", "face.png", "wall.png"]


def test_an_unreadable_image_among_many_is_reported_and_the_rest_labelled(store, face_image, capsys, workdir):
    (workdir / "broken.png").write_bytes(b"not a png")
    code, lines, err = cli(capsys, "--run-id", store, "--image", "broken.png", str(face_image), "--json")
    assert code == 1 and "error: cannot read image broken.png" in err
    assert [line["path"] for line in lines] == [str(face_image)]
    code, _, err = cli(capsys, "--run-id", store, "--image", "nothing-*.png")
    assert code == 1 and "no file matches nothing-*.png" in err
