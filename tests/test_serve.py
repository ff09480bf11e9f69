"""The HTTP API (python -m realtime.serve) in-process with FastAPI's TestClient: the CLI's JSON for a photo, every bad
upload refused in one line while the server goes on, the WebSocket stream dropping stale frames, batching, the
event loop free while a model works, and a reload following the registry's champion."""

import io
import json
import re
import struct
import tempfile
import threading
import time
import zlib

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import LOCAL, ROOT, compose_config
from emotion.errors import ModelNotFound
from emotion.inference.faces import BlazeFaceDetector
from emotion.inference.models import ModelChoice
from realtime import webcam
from realtime.serve import __main__ as serve_main
from realtime.serve.app import create_app
from realtime.serve.batching import BatchedBackend
from test_realtime import SMALL_MODEL, astronaut_frame, register_small_model, store  # noqa: F401 - store is a fixture

REFERENCE = ROOT / "models" / "reference"
LIMIT = 3_000_000  # serve.max_upload_bytes in these tests
STREAM = LOCAL.replace("http", "ws") + "/v1/stream"  # TestClient's WebSocket ignores its base URL


def encode(image: np.ndarray, suffix: str = ".jpg") -> bytes:
    return cv2.imencode(suffix, image)[1].tobytes()


FACE_JPEG = encode(astronaut_frame())


@pytest.fixture(scope="module")
def client():
    app = create_app(compose_config(f"serve.max_upload_bytes={LIMIT}"), ModelChoice(model_dir=str(REFERENCE)))
    with TestClient(app, base_url=LOCAL) as client:
        yield client


def one_face(response) -> dict:
    assert response.status_code == 200, response.text
    [face] = response.json()["faces"]
    return face


def test_a_photo_gets_the_json_the_cli_prints_for_it(client, tmp_path, capsys):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), astronaut_frame())
    with pytest.raises(SystemExit):
        webcam.main(["--model-dir", str(REFERENCE), "--image", str(path), "--json", "--headless"])
    cli = json.loads(capsys.readouterr().out)
    assert cli.pop("path") == str(path)  # the CLI names the file it read; an upload has no path
    multipart = client.post("/v1/analyze", files={"image": ("face.png", path.read_bytes(), "image/png")})
    raw = client.post("/v1/analyze", content=path.read_bytes(), headers={"content-type": "image/png"})
    assert multipart.json() == raw.json() == cli
    assert one_face(raw)["label"] == "happy"


def test_a_jpeg_upload_is_labelled_like_the_same_file_on_disk(client, tmp_path, capsys):
    (tmp_path / "face.jpg").write_bytes(FACE_JPEG)
    with pytest.raises(SystemExit):
        webcam.main(["--model-dir", str(REFERENCE), "--image", str(tmp_path / "face.jpg"), "--json", "--headless"])
    [cli] = json.loads(capsys.readouterr().out)["faces"]
    face = one_face(client.post("/v1/analyze", content=FACE_JPEG, headers={"content-type": "image/jpeg"}))
    assert face["box"] == cli["box"] and face["label"] == cli["label"]
    assert face["probs"] == pytest.approx(cli["probs"], abs=2e-3)  # Pillow and OpenCV decode JPEG alike, not bitwise


def bad_uploads() -> dict[str, tuple[dict, int, str]]:
    """name -> (request arguments, status, start of the error message)."""
    blank_50mp = encode(np.zeros((7000, 7200, 3), np.uint8))  # 0.8 MB: under the byte limit, over the pixel limit
    return {
        "not an image": ({"content": b"%PDF-1.7 not an image", "headers": {"content-type": "image/jpeg"}}, 400,
                         "the upload is not an image"),
        "truncated jpeg": ({"content": FACE_JPEG[: len(FACE_JPEG) // 2], "headers": {"content-type": "image/jpeg"}},
                           400, "cannot decode the image (image file is truncated"),
        "zero bytes": ({"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "the upload is empty"),
        "50 megapixels": ({"content": blank_50mp, "headers": {"content-type": "image/jpeg"}}, 413,
                          "the image is 7200x7000 (50.4 megapixels), more than the 16.0 allowed"),
        "over the byte limit": ({"content": b"\xff" * (LIMIT + 1), "headers": {"content-type": "image/jpeg"}}, 413,
                                f"upload of {LIMIT + 1:,} bytes or more is larger than the limit of {LIMIT:,} bytes"),
        "wrong content type": ({"content": FACE_JPEG, "headers": {"content-type": "text/plain"}}, 415,
                               "content type 'text/plain' is not accepted"),
        "form without a file": ({"files": {"name": (None, "face")}}, 400, "the multipart form has no field named image"),
        "multipart without a boundary": ({"content": FACE_JPEG, "headers": {"content-type": "multipart/form-data"}},
                                         400, "malformed multipart body"),
        "gif": ({"content": gif_bytes(), "headers": {"content-type": "image/gif"}}, 415, "content type 'image/gif'"),
        "image field missing": ({"files": {"upload": ("photo", FACE_JPEG)}}, 400,
                                "the multipart form has no field named image (its fields: upload)"),
        **{f"bomb: {name}": ({"content": data, "headers": {"content-type": "application/octet-stream"}}, 413,
                             "the image declares more pixels than the 16.0 million allowed")
           for name, data in BOMBS.items()},
    }


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels (its chunk checksum made to match)."""
    png = bytearray(encode(np.zeros((8, 8, 3), np.uint8), ".png"))
    png[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def bmp_declaring(width: int, height: int) -> bytes:
    """A 154-byte BMP: its header claims width x height pixels, none follow."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 154, 0, 0, 54) + header + bytes(154 - 54)


def jpeg_declaring(width: int, height: int) -> bytes:
    """The face JPEG with its frame header (SOF0) patched to width x height."""
    jpeg = bytearray(FACE_JPEG)
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(jpeg)


BOMBS = {"png 30000x30000": png_declaring(30000, 30000), "bmp header": bmp_declaring(100000, 100000),
         "jpeg 60000x60000": jpeg_declaring(60000, 60000)}


def gif_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, "GIF")
    return buffer.getvalue()


BAD = bad_uploads()


@pytest.mark.parametrize("name", BAD)
def test_a_bad_upload_gets_a_4xx_one_line_json_error_and_the_next_request_is_served(client, name):
    arguments, status, message = BAD[name]
    response = client.post("/v1/analyze", **arguments)
    assert response.status_code == status and "\n" not in response.text
    assert list(response.json()) == ["error"] and response.json()["error"].startswith(message), response.text
    assert one_face(client.post("/v1/analyze", files={"image": ("face.jpg", FACE_JPEG, "image/jpeg")}))


def test_a_multipart_image_is_its_image_field_a_file_or_a_plain_field(client):
    blank = encode(np.zeros((240, 320, 3), np.uint8))
    assert one_face(client.post("/v1/analyze", files=[("thumbnail", ("t.jpg", blank)), ("image", ("photo", FACE_JPEG))]))
    assert one_face(client.post("/v1/analyze", files={"image": (None, FACE_JPEG)}))


def test_an_unsupported_format_sent_as_octet_stream_is_named(client):
    response = client.post("/v1/analyze", content=gif_bytes(), headers={"content-type": "application/octet-stream"})
    assert response.status_code == 415 and response.json()["error"].startswith("GIF images are not supported")


def test_uploads_are_never_written_to_disk(client, monkeypatch):
    """A 2 MB multipart upload (above the 1 MB that form parsers keep in memory by default) touches no temp file."""

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was written to a temporary file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    noisy = cv2.resize(astronaut_frame(), None, fx=1.5, fy=1.5)  # 960x720, the face in the top half
    noisy[360:] = np.random.default_rng(0).integers(0, 256, noisy[360:].shape, np.uint8)
    png = encode(noisy, ".png")
    assert LIMIT > len(png) > 1.2e6
    response = client.post("/v1/analyze", files={"image": ("face.png", png, "image/png")})
    assert response.status_code == 200 and len(response.json()["faces"]) == 1


def test_model_and_health_say_what_serves(client):
    model = client.get("/v1/model").json()
    tags = json.loads((REFERENCE / "tags.json").read_text())
    assert model == {"name": "reference", "version": None, "run_id": tags["exported_from_run"],
                     "test_accuracy": 0.6265, "backend": "litert-int8",  # not where it lies on the server's disk
                     "test_time": {"scheme": "plain", "shift_px": 0}}
    assert client.get("/healthz").json() == {"status": "ok", "model": "reference"}
    assert client.get("/nowhere").json() == {"error": "Not Found"}


def test_the_in_browser_mode_finds_and_crops_faces_by_the_servers_settings():
    cfg = compose_config("realtime.box_scale=1.3", "realtime.verify_score=0.8", "realtime.align=false")
    with TestClient(create_app(cfg, ModelChoice(model_dir=str(REFERENCE))), base_url=LOCAL) as client:
        settings = client.get("/v1/browser/settings").json()
    assert settings == {"input_px": 128, "strides": [8, 16, 16, 16], "anchors_per_cell": 2, "min_score": 0.8,
                        "nms_iou": 0.3, "raw_score_limit": 80.0, "box_scale": 1.3, "box_shift": -0.1,
                        "align_min_deg": None, "face_px": 48}


def assert_all_it_loads_is_local(client, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = re.findall(r"(?:src|href)=[\"']([^\"']+)", page.text)
    assert links and all(link.startswith("/") for link in links), links  # nothing from a CDN or another site
    for link in links:
        assert client.get(link).status_code == 200, link


def test_the_page_and_everything_it_loads_come_from_this_server(client):
    assert_all_it_loads_is_local(client, "/")
    assert "url(" not in client.get("/static/style.css").text
    assert re.findall(r"fetch\(\"([^\"]+)", client.get("/static/app.js").text) == ["/v1/model"]


def test_a_failed_reload_names_the_model_not_the_servers_files(client, monkeypatch, caplog):
    def lost():
        raise ModelNotFound("no MLflow store at /srv/secret/mlflow.db: ...")

    monkeypatch.setattr(client.app.state.labeller, "_resolve", lost)
    response = client.post("/v1/reload")
    assert response.status_code == 503 and "/srv" not in response.text and str(ROOT) not in response.text
    assert response.json() == {"error": "reload failed, still serving reference: the server's log says why"}
    assert "/srv/secret/mlflow.db" in caplog.text


def test_only_the_files_the_docs_page_loads_are_served_and_the_page_has_an_icon(client):
    assert client.get("/static/docs/index.html").status_code == 404  # Swagger's own page points at a petstore
    assert client.get("/static/docs/swagger-initializer.js").status_code == 404
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_api_is_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/analyze", "/v1/model", "/v1/reload", "/healthz"} <= set(paths)
    assert set(paths["/v1/analyze"]["post"]["requestBody"]["content"]) >= {"multipart/form-data", "image/jpeg"}
    assert_all_it_loads_is_local(client, "/docs")  # Swagger UI from the package, not from a CDN
    assert "url: '/openapi.json'" in client.get("/docs").text


def test_the_stream_answers_frames_refuses_text_and_drops_stale_frames(client):
    with client.websocket_connect(STREAM) as ws:
        ws.send_text("hello")
        assert ws.receive_json() == {"error": "a text message: send each frame as a binary message holding a JPEG "
                                              "or PNG", "status": 415}
        ws.send_bytes(b"not a frame")  # frame 0 (a text message is no frame)
        error = ws.receive_json()
        assert error["status"] == 400 and error["index"] == 0 and error["error"].startswith("the upload is not an")
        ws.send_bytes(BOMBS["png 30000x30000"])  # frame 1
        assert ws.receive_json() == {"error": BAD["bomb: png 30000x30000"][2] + " (serve.max_image_pixels; Image size "
                                     "(900000000 pixels) exceeds limit of 178956970 pixels, could be decompression "
                                     "bomb DOS attack.): send a smaller image", "status": 413, "index": 1}
        ws.send_bytes(FACE_JPEG)
        answer = ws.receive_json()
        assert answer["index"] == 2 and answer["faces"][0]["label"] == "happy" and answer["time_s"] >= 0
        for _ in range(20):  # far faster than 20 frames can be labelled
            ws.send_bytes(FACE_JPEG)
        indexes = [ws.receive_json()["index"]]
        while indexes[-1] < 22:  # frames 3 to 22
            indexes.append(ws.receive_json()["index"])
    assert indexes == sorted(indexes) and len(indexes) < 20  # the newest frame is always answered, stale ones not


def test_a_stream_detects_faces_every_other_frame_as_the_cli_does_on_a_camera(client, monkeypatch):
    detected, detect = [], BlazeFaceDetector.detect
    monkeypatch.setattr(BlazeFaceDetector, "detect", lambda self, frame: detected.append(1) or detect(self, frame))
    with client.websocket_connect(STREAM) as ws:
        answers = []
        for _ in range(4):  # one at a time: none dropped
            ws.send_bytes(FACE_JPEG)
            answers.append(ws.receive_json())
    assert [answer["index"] for answer in answers] == [0, 1, 2, 3] and len(detected) == 2  # realtime.detect_every
    assert all(answer["faces"] == answers[0]["faces"] for answer in answers)  # boxes carried between detections


class SlowBackend:
    """Stands in for a model: its probabilities are each face's mean pixel value, after a pause; counts calls."""

    name = "slow"

    def __init__(self, pause_s: float):
        self.pause_s, self.calls = pause_s, []

    def predict(self, faces_u8: np.ndarray) -> np.ndarray:
        self.calls.append(len(faces_u8))
        time.sleep(self.pause_s)
        return np.repeat(faces_u8.mean(axis=(1, 2))[:, np.newaxis], 7, axis=1)


def test_concurrent_callers_faces_are_classified_together_and_each_gets_its_own():
    slow = SlowBackend(0.2)
    batched = BatchedBackend(slow, max_faces=64)
    faces = [np.full((n, 48, 48), n * 10, np.uint8) for n in range(1, 9)]
    results = [None] * len(faces)

    def call(i: int) -> None:
        results[i] = batched.predict(faces[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(faces))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batched.close()
    assert sum(slow.calls) == 36 and len(slow.calls) < len(faces)  # the first call alone, the rest waited together
    for face, probs in zip(faces, results):
        np.testing.assert_array_equal(probs, np.full((len(face), 7), face[0, 0, 0], float))


def test_a_failing_model_fails_every_caller_of_its_batch():
    class Broken:
        def predict(self, faces_u8):
            raise RuntimeError("model fell over")

    batched = BatchedBackend(Broken(), max_faces=8)
    with pytest.raises(RuntimeError, match="model fell over"):
        batched.predict(np.zeros((1, 48, 48), np.uint8))
    batched.close()


def test_the_event_loop_answers_while_a_face_is_being_classified(client):
    labeller = client.app.state.labeller
    real, slow = labeller.batched.backend, SlowBackend(3.0)
    labeller.batched.backend = slow
    try:
        upload = threading.Thread(target=client.post, args=("/v1/analyze",), kwargs={"content": FACE_JPEG})
        upload.start()
        deadline = time.monotonic() + 60
        while not slow.calls and time.monotonic() < deadline:  # until the upload's face has reached the model
            time.sleep(0.01)
        assert slow.calls, "the upload never reached the model"
        assert client.get("/healthz").status_code == 200 and upload.is_alive()
        upload.join()
    finally:
        labeller.batched.backend = real


@pytest.mark.parametrize("poll", [False, True], ids=["post-reload", "poll"])
def test_the_server_follows_the_champion_without_dropping_a_stream(store, poll):  # noqa: F811 - store: a fixture
    overrides = [*SMALL_MODEL, *(["serve.reload_poll_s=0.2"] if poll else [])]
    cfg = compose_config(*overrides)
    with TestClient(create_app(cfg, ModelChoice()), base_url=LOCAL) as client, client.websocket_connect(STREAM) as ws:
        first = client.get("/v1/model").json()
        assert first["run_id"] == store and first["version"] == 1 and first["test_accuracy"] == 0.5
        ws.send_bytes(FACE_JPEG)
        before = ws.receive_json()["faces"][0]["probs"]
        assert client.post("/v1/reload").json()["changed"] is False  # the champion has not moved

        moved = register_small_model(0.9)  # a second model beats the champion: the alias moves to it
        if poll:
            deadline = time.monotonic() + 120
            while client.get("/v1/model").json()["run_id"] != moved and time.monotonic() < deadline:
                time.sleep(0.2)
        else:
            reloaded = client.post("/v1/reload").json()
            assert reloaded["changed"] is True
        now = client.get("/v1/model").json()
        assert now["run_id"] == moved and now["version"] == 2 and now["test_accuracy"] == 0.9
        ws.send_bytes(FACE_JPEG)  # the same stream goes on, with the new model
        assert ws.receive_json()["faces"][0]["probs"] != before


@pytest.mark.parametrize("port", ["99999", "0"])
def test_a_port_out_of_range_fails_in_one_line_before_the_model_loads(port):
    with pytest.raises(SystemExit, match=rf"^error: serve.port={port}: use a port between 1 and 65535$"):
        serve_main.main(["--port", port])

