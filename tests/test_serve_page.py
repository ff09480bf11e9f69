"""The served page in a real browser: `python -m realtime.serve` on a free port, headless Chromium (Debian's chromium
and chromium-driver, driven by Selenium) whose fake camera plays a Y4M video of a face made here; the label and box
the page shows are checked against the API's answer for the same frame, and a screenshot is kept in
test-artifacts/. Then the messages for a refused camera permission and for no camera at all, and the API docs."""

import json
import shutil
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, report
from test_serve_process import start_server
from test_realtime import astronaut_frame

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
)
REFERENCE = ROOT / "models" / "reference"
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored: what a person looks at after the run
WAIT_S = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server as a person starts it; its base URL."""
    process, url = start_server(tmp_path_factory.mktemp("serve"))
    yield url
    process.terminate()
    process.wait(timeout=20)


def y4m_video(path: Path, frame_bgr: np.ndarray, frames: int = 10) -> np.ndarray:
    """Write frame_bgr as a Y4M video (4:2:0, what Chromium's fake camera plays in a loop); the frame as the browser
    decodes it back (BGR), after the chroma subsampling."""
    height, width = frame_bgr.shape[:2]
    yuv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420)  # the Y plane, then U, then V
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + yuv.tobytes())
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)


def chromium(*arguments: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800",
                     *arguments):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver, selector: str, text: str = ""):
    """The first element matching the CSS selector once it shows text (any text when text is empty)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(driver):
        elements = [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if text in e.text and e.text]
        return elements[0] if elements else False

    try:
        return WebDriverWait(driver, WAIT_S).until(found)
    except Exception:  # noqa: BLE001 - a timeout: say what the page showed instead
        pytest.fail(f"no {selector!r} with {text!r} after {WAIT_S} s; the page said: "
                    f"{driver.find_element(By.TAG_NAME, 'body').text!r}")


def analyze(url: str, frame_bgr: np.ndarray) -> dict:
    request = urllib.request.Request(f"{url}/v1/analyze", data=cv2.imencode(".png", frame_bgr)[1].tobytes(),
                                     headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


# what the page shows of the first face, read in one go (the page redraws it with every answer); null until a label
# is over a face and the frame rate is counted
SHOWN = """
const face = document.querySelector('#faces .face');
if (!face || !/^[0-9.]+ FPS$/.test(document.getElementById('fps').textContent)) return null;
const rect = (e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; };
return {label: face.querySelector('.label').textContent, box: face.dataset.box.split(',').map(Number),
        drawn: rect(face), video: rect(document.getElementById('video')),
        bars: [...face.querySelectorAll('.bar .name')].map(e => e.textContent),
        fps: document.getElementById('fps').textContent, model: document.getElementById('model').textContent};
"""


def test_the_page_labels_the_face_the_camera_shows_as_the_api_does(server, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    seen = y4m_video(tmp_path / "face.y4m", astronaut_frame())
    [expected] = analyze(server, seen)["faces"]
    driver = chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={tmp_path / 'face.y4m'}")
    try:
        driver.get(server)
        shown = WebDriverWait(driver, WAIT_S).until(lambda driver: driver.execute_script(SHOWN))
        assert shown["label"] == f"{expected['label']} {round(100 * expected['confidence'])} %"
        assert np.abs(np.subtract(shown["box"], expected["box"])).max() <= 8, (shown["box"], expected["box"])
        x, y, width, _ = shown["video"]
        scale = width / 640  # the box on screen lies over the face in the video
        np.testing.assert_allclose(shown["drawn"], [x + shown["box"][0] * scale, y + shown["box"][1] * scale,
                                                    shown["box"][2] * scale, shown["box"][3] * scale], atol=3)
        assert shown["bars"] == list(expected["probs"]) and float(shown["fps"].split()[0]) > 0
        assert shown["model"].startswith("model: reference · 62.6 % test accuracy")
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve_page.png"))

        driver.find_element("id", "pause").click()
        assert driver.find_element("id", "pause").text == "Resume"
        assert driver.execute_script("return document.getElementById('video').paused")
    finally:
        driver.quit()


VENDOR = ROOT / "realtime" / "serve" / "static" / "vendor"


@pytest.mark.skipif(not (VENDOR / "blazeface.onnx").exists(),
                    reason="the in-browser mode is not built: bash scripts/browser_mode.sh (.ci/run does)")
def test_the_in_browser_mode_labels_without_sending_a_frame(server, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    seen = y4m_video(tmp_path / "face.y4m", astronaut_frame(), frames=30)
    [expected] = analyze(server, seen)["faces"]
    driver = chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={tmp_path / 'face.y4m'}")
    try:
        fps = {}
        for mode in ("server", "browser"):
            driver.get(f"{server}/?mode={mode}")
            shown = WebDriverWait(driver, WAIT_S).until(lambda driver: driver.execute_script(SHOWN))
            time.sleep(3)  # the rate over the last 2 s, once it is steady
            fps[mode] = float(driver.execute_script(SHOWN)["fps"].split()[0])
        assert driver.execute_script("return socket === null && sent === 0")  # no frame left the page
        assert driver.find_element("id", "where").text == "labelled in this browser"
        assert shown["label"].split()[0] == expected["label"]
        assert np.abs(np.subtract(shown["box"], expected["box"])).max() <= 0.15 * expected["box"][2], shown["box"]
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve_page_in_browser.png"))
        report(f"page frames/s on the fake camera, headless Chromium: {fps['server']} labelled by the server, "
               f"{fps['browser']} in the browser (ONNX Runtime Web, one thread)")
    finally:
        driver.quit()


def test_a_lost_connection_clears_the_labels_while_the_page_reconnects(tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    process, url = start_server(tmp_path)
    y4m_video(tmp_path / "face.y4m", astronaut_frame())
    driver = chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={tmp_path / 'face.y4m'}")
    try:
        driver.get(url)
        WebDriverWait(driver, WAIT_S).until(lambda driver: driver.execute_script(SHOWN))
        process.terminate()  # the server goes away
        wait_for(driver, "#message", "Lost the connection to the server: reconnecting")
        assert not driver.find_elements("css selector", "#faces .face")
        assert driver.find_element("id", "fps").text == ""
    finally:
        driver.quit()
        process.kill()
        process.wait(timeout=30)


def test_a_server_with_keys_asks_for_one_and_labels_once_it_is_given(tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    key = "page-key-0123456789abcdef"
    (tmp_path / "keys").write_text(f"{key}\n")
    process, url = start_server(tmp_path, f"serve.api_keys_file={tmp_path / 'keys'}")
    y4m_video(tmp_path / "face.y4m", astronaut_frame())
    driver = chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={tmp_path / 'face.y4m'}")
    try:
        driver.get(url)
        wait_for(driver, "#key-form", "This server needs a key")
        driver.find_element("id", "key").send_keys("wrong-key-0123456789abcdef")
        driver.find_element("css selector", "#key-form button").click()
        wait_for(driver, "#message", "The server refused this key: enter another.")
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve_page_key.png"))
        driver.find_element("id", "key").clear()
        driver.find_element("id", "key").send_keys(key)
        driver.find_element("css selector", "#key-form button").click()
        shown = WebDriverWait(driver, WAIT_S).until(lambda driver: driver.execute_script(SHOWN))
        assert shown["label"].startswith("happy") and shown["model"].startswith("model: reference")
        assert key not in (tmp_path / "server.log").read_text()
    finally:
        driver.quit()
        process.terminate()
        process.wait(timeout=30)


def test_a_refused_camera_permission_says_how_to_allow_it(server):
    driver = chromium("--use-fake-device-for-media-stream")
    try:
        driver.execute_cdp_cmd("Browser.setPermission", {"origin": server, "permission": {"name": "camera"},
                                                         "setting": "denied"})
        driver.get(server)
        message = wait_for(driver, "#message", "Camera permission was refused")
        assert "allow the camera for this page" in message.text
        assert not driver.find_elements("css selector", "#faces .face")
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve_page_denied.png"))
    finally:
        driver.quit()


def test_no_camera_at_all_is_said_plainly(server):
    driver = chromium("--use-fake-ui-for-media-stream")
    try:  # a browser whose machine has no camera: getUserMedia finds none
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
            "navigator.mediaDevices.getUserMedia = () => "
            "Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));")})
        driver.get(server)
        wait_for(driver, "#message", "No camera found: connect a camera, then reload the page.")
    finally:
        driver.quit()


def test_the_api_docs_render_offline(server):
    driver = chromium()
    try:  # Swagger UI from the package renders FastAPI's OpenAPI 3.1 document: every route listed
        driver.get(f"{server}/docs")
        for path in ("/v1/analyze", "/v1/model", "/v1/reload", "/healthz"):
            wait_for(driver, ".opblock-summary-path", path)
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve_docs.png"))
    finally:
        driver.quit()
