"""fer-serve under load and watch: a full labelling queue answers 503 with Retry-After, streams beyond the limit are
closed (1013), a key over its rate gets 429, GET /metrics parses as Prometheus text and counts what happened,
/readyz turns 503 while draining, and serve.log_format=json writes one JSON object a request."""

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.websockets import WebSocketDisconnect

from conftest import LOCAL, ROOT, compose_config
from emotion.inference.models import ModelChoice
from realtime.serve.access import RateLimit
from realtime.serve.app import TRY_AGAIN_LATER, create_app
from test_serve import FACE_JPEG, STREAM

REFERENCE = ROOT / "models" / "reference"
KEY = "limits-key-0123456789abcdef"


def client_of(*overrides: str) -> TestClient:
    return TestClient(create_app(compose_config(*overrides), ModelChoice(model_dir=str(REFERENCE))), base_url=LOCAL)


def upload(client, headers: dict | None = None):
    return client.post("/v1/analyze", content=FACE_JPEG, headers={"Content-Type": "image/jpeg", **(headers or {})})


def test_a_full_queue_answers_503_with_retry_after_and_the_queue_drains(monkeypatch):
    with client_of("serve.max_queue=1") as client:
        labeller, release = client.app.state.labeller, threading.Event()
        real = labeller._label
        monkeypatch.setattr(labeller, "_label", lambda data: release.wait(30) and real(data))
        first = {}
        worker = threading.Thread(target=lambda: first.setdefault("response", upload(client)))
        worker.start()
        deadline = time.monotonic() + 30
        while labeller.queued < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = upload(client)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "1 images are already waiting (serve.max_queue): try again in a second"
        release.set()
        worker.join(30)
        assert first["response"].status_code == 200 and upload(client).status_code == 200


def test_streams_beyond_the_limit_are_closed_with_try_again_later():
    with client_of("serve.max_streams=1") as client, client.websocket_connect(STREAM) as first:
        with client.websocket_connect(STREAM) as second, pytest.raises(WebSocketDisconnect) as closed:
            second.receive_json()
        assert closed.value.code == TRY_AGAIN_LATER and "serve.max_streams" in closed.value.reason
        first.send_bytes(FACE_JPEG)
        assert first.receive_json()["faces"]  # the open one goes on
    with client_of("serve.max_streams=1") as client:
        for _ in range(2):  # one at a time: a closed stream frees its place
            with client.websocket_connect(STREAM) as ws:
                ws.send_bytes(FACE_JPEG)
                assert ws.receive_json()["faces"]


def test_a_key_over_its_rate_gets_429_with_retry_after():
    with client_of(f"serve.api_keys=[{KEY}]", "serve.rate_per_key=1") as client:
        headers = {"Authorization": f"Bearer {KEY}"}
        answers = [client.get("/v1/model", headers=headers) for _ in range(3)]  # a burst of 2 is allowed
        assert [a.status_code for a in answers] == [200, 200, 429] and answers[2].headers["retry-after"] == "1"
        assert "serve.rate_per_key" in answers[2].json()["error"] and KEY not in answers[2].text


def test_a_rate_refills_with_time():
    now = [0.0]
    rate = RateLimit(2.0, clock=lambda: now[0])  # 2 a second, bursts of 4
    assert [rate.wait_s("k") for _ in range(5)] == [0, 0, 0, 0, pytest.approx(0.5)]
    now[0] = 0.5  # one more token
    assert rate.wait_s("k") == 0 and rate.wait_s("k") == pytest.approx(0.5)
    assert rate.wait_s("other key") == 0 and RateLimit(0).wait_s("k") == 0


def metric_samples(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_count_requests_faces_and_time_and_name_the_model():
    with client_of() as client:
        for _ in range(3):
            assert upload(client).status_code == 200
        assert client.post("/v1/analyze", content=b"no image", headers={"Content-Type": "image/jpeg"}).status_code == 400
        with client.websocket_connect(STREAM) as ws:
            ws.send_bytes(FACE_JPEG)
            ws.receive_json()
            streams = metric_samples(client)[("fer_open_streams", ())]
        samples = metric_samples(client)
    assert samples[("fer_requests_total", (("route", "/v1/analyze"), ("status", "200")))] == 3
    assert samples[("fer_requests_total", (("route", "/v1/analyze"), ("status", "400")))] == 1
    assert samples[("fer_request_seconds_count", (("route", "/v1/analyze"),))] == 4
    assert samples[("fer_faces_per_image_count", ())] == 4 and samples[("fer_faces_per_image_sum", ())] == 4
    assert samples[("fer_detection_seconds_count", ())] >= 4 and samples[("fer_classification_seconds_count", ())] >= 1
    assert samples[("fer_queue_depth", ())] == 0 and streams == 1 and samples[("fer_open_streams", ())] == 0
    [(_, labels)] = [key for key in samples if key[0] == "fer_model_info"]
    assert dict(labels) == {"name": "reference", "version": "", "run_id": dict(labels)["run_id"],
                            "backend": "litert-int8"} and dict(labels)["run_id"]


def test_readyz_turns_503_while_draining_and_healthz_stays_up():
    with client_of() as client:
        assert client.get("/readyz").json() == {"status": "ready", "model": "reference"}
        client.app.state.draining = lambda: True
        assert client.get("/readyz").status_code == 503 and client.get("/healthz").status_code == 200


def test_the_json_access_log_is_one_object_a_request(caplog):
    with caplog.at_level("INFO", logger="realtime.serve.access"), client_of("serve.log_format=json") as client:
        upload(client)
        client.get("/nowhere")
    lines = [json.loads(record.message) for record in caplog.records if record.name == "realtime.serve.access"]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/v1/analyze", 200), ("GET", "/nowhere", 404)]
    assert all(line["ms"] > 0 and line["time"].endswith("+00:00") and "client" in line for line in lines)
