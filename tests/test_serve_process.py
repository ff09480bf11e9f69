"""`python -m realtime.serve` as a process, as a person or a service manager runs it: Ctrl-C ends it with 130, SIGTERM
answers the requests in flight and exits 0, a client that leaves mid-upload costs one log line, a stalled upload is
answered 408; with serve.workers=2, two processes whose metrics add up and which all follow a reload."""

import json

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from services import free_port
from test_realtime import astronaut_frame, register_small_model, store  # noqa: F401 - store is a fixture

REFERENCE = ROOT / "models" / "reference"
WAIT_S = 60


def start_server(folder: Path, *overrides: str, model: tuple[str, ...] = ("--model-dir", str(REFERENCE))
                 ) -> tuple[subprocess.Popen, str]:
    """python -m realtime.serve with the shipped model (or the given model options; none: the champion of the store
    in folder), as a person starts it, logging to folder/server.log; the process and its base URL once it answers."""
    port = free_port()
    with (folder / "server.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "realtime.serve", *model, "--port", str(port), *overrides],
                                   cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + WAIT_S
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)


def test_ctrl_c_stops_the_server_with_130_as_every_command(tmp_path):
    process, _ = start_server(tmp_path)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130, (tmp_path / "server.log").read_text()[-2000:]
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def begin_upload(url: str, sent: bytes, length: int) -> socket.socket:
    """A POST /v1/analyze whose headers promise length bytes, of which only `sent` have been sent."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    connection.sendall(f"POST /v1/analyze HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
                       f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode() + sent)
    return connection


def answer(connection: socket.socket) -> str:
    connection.settimeout(30)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received.decode(errors="replace")


def jpeg() -> bytes:
    import cv2

    return cv2.imencode(".jpg", astronaut_frame())[1].tobytes()


def test_sigterm_answers_the_request_in_flight_and_exits_0(tmp_path):
    process, url = start_server(tmp_path)
    photo = jpeg()
    upload = begin_upload(url, photo[:1000], len(photo))
    time.sleep(0.5)  # the request is in flight when the stop comes
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    upload.sendall(photo[1000:])
    response = answer(upload)
    assert process.wait(timeout=30) == 0
    log = (tmp_path / "server.log").read_text()
    assert response.startswith("HTTP/1.1 200") and '"label"' in response, response[:300]
    assert "Traceback" not in log and log.count("stopped on SIGTERM after answering the requests in flight") == 1


def test_a_client_that_leaves_mid_upload_costs_one_log_line_and_a_stalled_one_gets_408(tmp_path):
    process, url = start_server(tmp_path, "serve.body_timeout_s=1")
    try:
        lines = len((tmp_path / "server.log").read_text().splitlines())
        begin_upload(url, b"\xff" * 5000, 100_000).close()
        stalled = begin_upload(url, b"\xff" * 5000, 100_000)
        response = answer(stalled)  # no more bytes come: after serve.body_timeout_s, 408
        assert response.startswith("HTTP/1.1 408") and "serve.body_timeout_s; 5,000 bytes came" in response
        urllib.request.urlopen(f"{url}/healthz", timeout=5)  # still serving
        log = (tmp_path / "server.log").read_text().splitlines()[lines:]
        left = [line for line in log if "the client left before its upload arrived" in line]
        assert len(left) == 1 and not any("Traceback" in line or " 500" in line for line in log), log
    finally:
        process.terminate()
        process.wait(timeout=30)


def workers_of(process: subprocess.Popen, log: Path, started: int) -> set[int]:
    """The server's two worker processes, once `started` workers have started in all (each logs its start)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        workers = {int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}
        if len(workers) == 2 and log.read_text().count("Application startup complete.") >= started:
            return workers  # (multiprocessing's resource tracker is a child too)
        time.sleep(0.3)
    pytest.fail(f"the workers did not start: {log.read_text()[-2000:]}")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # a new connection each time: any worker may answer
        return json.load(response)


def analyzed_200(url: str) -> float:
    """fer_requests_total for POST /v1/analyze answered 200, as whichever worker answers /metrics counts them."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    [line] = [line for line in text.splitlines()
              if line.startswith('fer_requests_total{route="/v1/analyze",status="200"}')]
    return float(line.split()[-1])


def test_two_workers_serve_one_port_and_their_metrics_add_up(tmp_path):
    process, url = start_server(tmp_path, "serve.workers=2")
    try:
        workers_of(process, tmp_path / "server.log", started=2)
        photo = jpeg()
        for _ in range(8):
            request = urllib.request.Request(f"{url}/v1/analyze", photo, {"Content-Type": "image/jpeg"})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert json.load(response)["faces"][0]["label"]
        assert [analyzed_200(url) for _ in range(8)] == [8.0] * 8  # whichever worker answers, all 8 are counted
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    log = (tmp_path / "server.log").read_text()
    assert code == 130 and "Traceback" not in log, log[-2000:]


def test_a_reload_that_moves_the_champion_reaches_every_worker(store, workdir):  # noqa: F811 - store: a fixture
    process, url = start_server(workdir, "serve.workers=2", model=())
    try:
        workers = workers_of(process, workdir / "server.log", started=2)
        assert {get_json(f"{url}/v1/model")["run_id"] for _ in range(6)} == {store}
        moved = register_small_model(0.9)  # a second model beats the champion: the alias moves to it
        request = urllib.request.Request(f"{url}/v1/reload", method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.load(response)["changed"] is True
        # the supervisor replaces the workers one after the other
        assert not workers & workers_of(process, workdir / "server.log", started=4)
        assert {get_json(f"{url}/v1/model")["run_id"] for _ in range(10)} == {moved}
        with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
            served = [line for line in response.read().decode().splitlines()
                      if line.startswith("fer_model_info{") and line.endswith(" 1.0")]
        assert len(served) == 1 and f'run_id="{moved}"' in served[0], served
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    log = (workdir / "server.log").read_text()
    assert code == 0 and "Traceback" not in log, log[-3000:]
    assert log.count("stopped on SIGTERM after answering the requests in flight") == 1
