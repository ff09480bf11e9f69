"""Who may use fer-serve: API keys over HTTP and the WebSocket (missing, wrong, right; admin for reloading), pages of
other sites and foreign Host headers refused, CORS only where configured, no exposure beyond loopback without keys;
keys never logged."""

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from conftest import LOCAL, ROOT, compose_config
from emotion.config import ServeConfig
from emotion.errors import ConfigError
from emotion.inference.models import ModelChoice
from realtime.serve import access
from realtime.serve.app import create_app
from test_serve import FACE_JPEG, STREAM

REFERENCE = ROOT / "models" / "reference"
USER, ADMIN = "user-key-0123456789abcdef", "admin-key-0123456789abcdef"


def app(*overrides: str):
    return create_app(compose_config(*overrides), ModelChoice(model_dir=str(REFERENCE)))


@pytest.fixture(scope="module")
def keyed():
    with TestClient(app(f"serve.api_keys=[{USER}]", f"serve.admin_keys=[{ADMIN}]"), base_url=LOCAL) as client:
        yield client


@pytest.fixture(scope="module")
def open_client():
    with TestClient(app("serve.allowed_origins=[http://friend.example]"), base_url=LOCAL) as client:
        yield client


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def upload(client, headers: dict | None = None):
    return client.post("/v1/analyze", content=FACE_JPEG, headers={"Content-Type": "image/jpeg", **(headers or {})})


def test_every_v1_route_needs_a_key_and_reloading_an_admin_key(keyed, caplog):
    for headers in ({}, auth("wrong-key-0123456789abcdef"), {"Authorization": USER}):
        for response in (keyed.get("/v1/model", headers=headers), upload(keyed, headers),
                         keyed.post("/v1/reload", headers=headers), keyed.get("/v1/browser/settings", headers=headers),
                         keyed.get("/v1/browser/model", headers=headers)):
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
            assert list(response.json()) == ["error"]
    assert keyed.get("/v1/model", headers=auth(USER)).status_code == 200
    assert upload(keyed, auth(USER)).json()["faces"][0]["label"] == "happy"
    assert keyed.post("/v1/reload", headers=auth(USER)).status_code == 403
    assert keyed.post("/v1/reload", headers=auth(ADMIN)).json()["changed"] is False
    assert upload(keyed, auth(ADMIN)).status_code == 200  # an admin key is a key too
    assert keyed.get("/healthz").status_code == 200 and keyed.get("/").status_code == 200  # the page asks for one
    assert USER not in caplog.text and ADMIN not in caplog.text


def test_the_stream_takes_the_key_as_a_header_or_as_a_browsers_subprotocol(keyed):
    for kwargs in ({}, {"headers": auth("wrong-key-0123456789abcdef")}, {"subprotocols": ["fer.v1"]}):
        with keyed.websocket_connect(STREAM, **kwargs) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == access.KEY_NEEDED
    with keyed.websocket_connect(STREAM, headers=auth(USER)) as ws:
        ws.send_bytes(FACE_JPEG)
        assert ws.receive_json()["faces"][0]["label"] == "happy"
    with keyed.websocket_connect(STREAM, subprotocols=["fer.v1", f"bearer.{USER}"]) as ws:
        assert ws.accepted_subprotocol == "fer.v1"
        ws.send_bytes(FACE_JPEG)
        assert ws.receive_json()["faces"][0]["label"] == "happy"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9999"])
def test_pages_of_other_sites_can_neither_post_nor_open_the_stream(open_client, origin):
    response = upload(open_client, {"Origin": origin})
    assert response.status_code == 403 and "add it to serve.allowed_origins" in response.json()["error"]
    assert open_client.post("/v1/reload", headers={"Origin": origin}).status_code == 403
    with pytest.raises(WebSocketDisconnect) as denied:  # closed before the handshake (a browser sees 403)
        with open_client.websocket_connect(STREAM, headers={"Origin": origin}):
            pass
    assert denied.value.code == 1008


@pytest.mark.parametrize("origin", [LOCAL, "http://friend.example"])
def test_the_servers_own_page_and_configured_ones_may(open_client, origin):
    assert upload(open_client, {"Origin": origin}).status_code == 200
    with open_client.websocket_connect(STREAM, headers={"Origin": origin}) as ws:
        ws.send_bytes(FACE_JPEG)
        assert ws.receive_json()["faces"]


def test_a_foreign_host_header_is_refused(open_client):
    assert open_client.get("/v1/model", headers={"Host": "evil.example"}).status_code == 400
    with pytest.raises(WebSocketDenialResponse):
        with open_client.websocket_connect("ws://evil.example/v1/stream"):
            pass


def test_cors_is_off_unless_origins_are_configured(open_client):
    preflight = {"Origin": "http://friend.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    assert "access-control-allow-origin" not in open_client.options("/v1/analyze", headers=preflight).headers
    with TestClient(app("serve.cors_origins=[http://friend.example]"), base_url=LOCAL) as client:
        answer = client.options("/v1/analyze", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "http://friend.example"


def test_keys_come_from_a_file_and_bad_ones_are_refused_without_quoting_them(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"# the team\n{USER}\n{ADMIN} admin\n\n")
    loaded = access.load_keys(ServeConfig(api_keys_file=str(keys)))
    assert loaded.allows(USER) and not loaded.allows(USER, admin=True) and loaded.allows(ADMIN, admin=True)
    assert not loaded.allows(None) and not loaded.allows("") and access.Keys().allows(None)
    with pytest.raises(ConfigError, match="a key must be 16 or more") as err:
        access.load_keys(ServeConfig(api_keys=["short secret"]))
    assert "short secret" not in str(err.value)
    keys.write_text(f"{USER} owner\n")
    with pytest.raises(ConfigError, match="line 1: write KEY or KEY admin") as err:
        access.load_keys(ServeConfig(api_keys_file=str(keys)))
    assert USER not in str(err.value)
    with pytest.raises(ConfigError, match="cannot read it"):
        access.load_keys(ServeConfig(api_keys_file=str(tmp_path / "missing")))


def test_the_server_is_not_exposed_beyond_loopback_without_keys():
    with pytest.raises(ConfigError, match=r"serve.host=0.0.0.0 lets other machines in, and no key is set"):
        app("serve.host=0.0.0.0")
    with pytest.raises(ConfigError, match="name the host names clients use in serve.allowed_hosts"):
        app("serve.host=0.0.0.0", f"serve.api_keys=[{USER}]")
    for host in ("127.0.0.1", "localhost", "::1"):
        access.check_exposure(ServeConfig(host=host), access.Keys())
    access.check_exposure(ServeConfig(host="0.0.0.0", allow_anonymous=True, allowed_hosts=["fer.example"]),
                          access.Keys())
