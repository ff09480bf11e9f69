"""`python -m realtime.serve` as a process, as a person or a service manager runs it: Ctrl-C ends it with 130, SIGTERM
answers the requests in flight and exits 0, a client that leaves mid-upload costs one log line, a stalled upload is
answered 408."""

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
from test_realtime import astronaut_frame

REFERENCE = ROOT / "models" / "reference"
WAIT_S = 60


def start_server(folder: Path, *overrides: str) -> tuple[subprocess.Popen, str]:
    """python -m realtime.serve with the shipped model, as a person starts it, logging to folder/server.log; the
    process and its base URL once it answers."""
    port = free_port()
    with (folder / "server.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "realtime.serve", "--model-dir", str(REFERENCE), "--port",
                                    str(port), *overrides], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
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
