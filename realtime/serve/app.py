"""The routes: POST /v1/analyze, GET /v1/model, POST /v1/reload, GET /healthz, WebSocket /v1/stream, the page at /
and the API's documentation at /docs (static files shipped in packages, nothing from outside the machine)."""

import asyncio
import json
import logging
import math
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from swagger_ui_bundle import swagger_ui_path

from emotion.config import Config
from emotion.errors import UserError
from emotion.inference.image_bytes import ImageRefused
from emotion.inference.models import ModelChoice
from emotion.inference.records import FrameResult
from realtime.serve import access, uploads
from realtime.serve.labeller import Busy, Labeller, browser_model, browser_settings, model_name
from realtime.serve.metrics import ServerMetrics
from realtime.serve.stream import serve_stream

log = logging.getLogger(__name__)
access_log = logging.getLogger("realtime.serve.access")  # serve.log_format=json: a JSON object a request

STATIC = Path(__file__).parent / "static"
TRY_AGAIN_LATER = 1013  # the stream's close code when serve.max_streams are open
DOCS_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}  # what /docs loads from swagger-ui-bundle
IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {"image": IMAGE_BODY}}},
    **{media_type: IMAGE_BODY for media_type in ("image/jpeg", "image/png", "image/webp", "image/bmp")},
}}}


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, refused (413) as soon as it passes limit bytes (a liar's Content-Length cannot get past),
    and (408) when it has not all arrived after timeout_s."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        uploads.check_size(int(declared), limit)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                uploads.check_size(len(body), limit)
    except TimeoutError:
        raise ImageRefused(408, f"the upload did not arrive within {timeout_s:g} s (serve.body_timeout_s; "
                                f"{len(body):,} bytes came): send it again on a faster connection") from None
    return bytes(body)


async def follow_registry(labeller: Labeller, every_s: float) -> None:
    """Reload every every_s seconds; a failed try keeps the model that serves and is tried again next time."""
    while True:
        await asyncio.sleep(every_s)
        try:
            if await labeller.reload():
                log.info("the model moved: now serving %s", labeller.info)
        except UserError as err:
            log.warning("reload failed, still serving %s: %s", labeller.model.folder, err)


def own_origin(scope_scheme: str, host: str) -> str:
    """The origin of the server's own page, as a browser on it sends it (http(s)://host[:port])."""
    return f"{'https' if scope_scheme in ('https', 'wss') else 'http'}://{host}"


def create_app(cfg: Config, choice: ModelChoice) -> FastAPI:
    """The application, with its model loaded (a model that cannot be had, or an exposure without keys, fails here,
    before serving)."""
    keys = access.load_keys(cfg.serve)
    access.check_exposure(cfg.serve, keys)
    origins = [*cfg.serve.allowed_origins, *cfg.serve.cors_origins]
    metrics = ServerMetrics()
    labeller = Labeller(cfg, choice, metrics)
    rate = access.RateLimit(cfg.serve.rate_per_key if keys.required else 0)
    streams = []  # the open ones

    def user(request: Request) -> None:
        key = access.bearer_key(request.headers)
        if not keys.allows(key):
            raise HTTPException(401, "a valid key is needed: send Authorization: Bearer KEY (ask the server's admin "
                                     "for one)", headers={"WWW-Authenticate": "Bearer"})
        if wait_s := rate.wait_s(key or ""):
            raise HTTPException(429, f"more than {cfg.serve.rate_per_key:g} requests a second with this key "
                                     "(serve.rate_per_key): slow down", headers={"Retry-After": str(math.ceil(wait_s))})

    def admin(request: Request) -> None:
        key = access.bearer_key(request.headers)
        if not keys.allows(key, admin=True):
            raise HTTPException(403 if keys.allows(key) else 401,
                                "reloading needs an admin key: send Authorization: Bearer ADMIN_KEY",
                                headers={"WWW-Authenticate": "Bearer"})

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        every_s = cfg.serve.reload_poll_s
        poll = asyncio.create_task(follow_registry(labeller, every_s)) if every_s else None
        try:
            yield
        finally:
            if poll:
                poll.cancel()
            labeller.close()
            metrics.close()

    app = FastAPI(title="Facial emotion recognition", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Faces and their emotions in images and camera frames; the page at / shows a webcam.")
    app.state.labeller = labeller
    app.state.draining = lambda: False  # fer-serve points it at uvicorn's shutdown flag
    app.state.moved = lambda: None  # what else a reload that changed the model does (workers: restart the others)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=cfg.serve.allowed_hosts)
    if cfg.serve.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.serve.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.middleware("http")
    async def same_origin(request: Request, call_next):
        """A script of another site (or a sandboxed "null" page) may not post here, whatever the browser sends."""
        origin = request.headers.get("origin")
        if not access.origin_allowed(origin, own_origin(request.url.scheme, request.headers.get("host", "")), origins):
            return JSONResponse({"error": f"requests from pages of {origin} are refused: add it to "
                                          "serve.allowed_origins to allow them"}, 403)
        return await call_next(request)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        """Every answer counted by route and status, timed, and (serve.log_format=json) logged as one JSON line."""
        start = time.perf_counter()
        response = await call_next(request)
        seconds = time.perf_counter() - start
        route = getattr(request.scope.get("route"), "path", "unmatched")  # the template: few distinct values
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(seconds)
        if cfg.serve.log_format == "json":
            access_log.info(json.dumps({
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "method": request.method,
                "path": request.url.path, "status": response.status_code, "ms": round(1000 * seconds, 2),
                "client": request.client.host if request.client else None}))
        return response

    @app.exception_handler(Busy)
    async def busy(request: Request, err: Busy) -> JSONResponse:
        return JSONResponse({"error": str(err)}, 503, headers={"Retry-After": "1"})

    @app.exception_handler(ImageRefused)
    async def refused(request: Request, err: ImageRefused) -> JSONResponse:
        return JSONResponse({"error": str(err)}, err.status)

    @app.exception_handler(ClientDisconnect)
    async def left(request: Request, err: ClientDisconnect) -> Response:
        log.info("%s %s: the client left before its upload arrived", request.method, request.url.path)
        return Response(status_code=400)  # nobody reads it

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(err.detail)}, err.status_code, headers=err.headers)

    @app.post("/v1/analyze", response_model=FrameResult, openapi_extra=UPLOAD_DOC, dependencies=[Depends(user)])
    async def analyze(request: Request) -> JSONResponse:
        """The faces in an image (multipart field `image`, or the raw body with an image/* type): box (x, y, w, h),
        label, confidence and the 7 probabilities each, as `fer-webcam --image FILE --json` prints them."""
        body = await read_body(request, cfg.serve.max_upload_bytes, cfg.serve.body_timeout_s)
        return JSONResponse(await labeller.label(uploads.image_bytes(body, request.headers.get("content-type", ""))))

    @app.get("/v1/model", dependencies=[Depends(user)])
    async def model() -> dict:
        """The model that serves: registered name and version (a folder: its name), run id, test accuracy, backend."""
        return labeller.info

    @app.get("/v1/browser/model", dependencies=[Depends(user)], include_in_schema=False)
    async def model_for_browser() -> FileResponse:
        """The serving model's ONNX file, for the page's in-browser mode (frames then never leave the browser)."""
        path = browser_model(labeller.model.folder)
        if path is None:
            raise HTTPException(404, f"{model_name(labeller.info)} has no ONNX model for the browser: make its int8 "
                                     "models with python -m realtime.quantize")
        return FileResponse(path, media_type="application/octet-stream")

    @app.get("/v1/browser/settings", dependencies=[Depends(user)], include_in_schema=False)
    async def settings_for_browser() -> dict:
        """How the in-browser mode finds and crops faces: the server's own settings (realtime.*)."""
        return browser_settings(cfg.realtime)

    @app.post("/v1/reload", dependencies=[Depends(admin)])
    async def reload() -> JSONResponse:
        """Resolve the model again (e.g. the champion alias moved) and swap it in without dropping connections
        (several workers: the others are replaced one after the other, each by one that serves the new model)."""
        try:
            changed = await labeller.reload()
        except UserError as err:  # the reason may name the server's files: in its log only
            log.warning("reload failed, still serving %s: %s", labeller.model.folder, err)
            return JSONResponse({"error": f"reload failed, still serving {model_name(labeller.info)}: the server's "
                                          "log says why"}, 503)
        if changed:
            app.state.moved()
        return JSONResponse({"changed": changed, "model": labeller.info})

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness: the server answers and has a model."""
        return {"status": "ok", "model": model_name(labeller.info)}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: the model is loaded and the server is not draining (stopping on SIGTERM)."""
        if app.state.draining():
            return JSONResponse({"status": "draining"}, 503)
        return JSONResponse({"status": "ready", "model": model_name(labeller.info)})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        """Frames in, answers out; a browser offers the subprotocol fer.v1 (and bearer.KEY when keys are set)."""
        origin = websocket.headers.get("origin")
        if not access.origin_allowed(origin, own_origin(websocket.url.scheme, websocket.headers.get("host", "")),
                                     origins):
            log.info("stream refused: opened by a page of %s", origin)
            await websocket.close(code=1008)  # before the handshake: the browser sees 403
            return
        offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
        protocol = access.PROTOCOL if access.PROTOCOL in offered else None
        if not keys.allows(access.bearer_key(websocket.headers)):
            await websocket.accept(protocol)  # so that the page hears why, and asks for a key
            await websocket.close(code=access.KEY_NEEDED, reason="a valid key is needed")
            return
        if len(streams) >= cfg.serve.max_streams:
            await websocket.accept(protocol)
            await websocket.close(code=TRY_AGAIN_LATER, reason=f"{len(streams)} streams are open (serve.max_streams)")
            return
        streams.append(websocket)
        metrics.streams.set(len(streams))
        try:
            await serve_stream(websocket, await labeller.stream_labeller(), protocol)
        finally:
            streams.remove(websocket)
            metrics.streams.set(len(streams))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from the swagger-ui-bundle package rather than FastAPI's default CDN."""
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url="/static/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static/docs/swagger-ui.css",
                                   swagger_favicon_url="/static/docs/favicon-32x32.png")  # DOCS_FILES

    @app.get("/static/docs/{name}", include_in_schema=False)
    async def docs_file(name: str) -> FileResponse:
        """Only the files /docs loads (the package also holds a page that points at an outside example API)."""
        if name not in DOCS_FILES:
            raise HTTPException(404, "Not Found")
        return FileResponse(Path(swagger_ui_path) / name)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
