"""How fer-serve runs: one process (serve.workers=1), or uvicorn's worker processes on one port, each with its own
model, labelling threads, queue and limits. Either way Ctrl-C and SIGTERM drain the requests in flight; the signal
that stopped the server is returned."""

import json
import os
import signal
import tempfile
from dataclasses import asdict

import uvicorn
from uvicorn.supervisors import Multiprocess

from emotion.config import Config
from emotion.inference.models import ModelChoice, resolve
from realtime import options
from realtime.serve import access
from realtime.serve.metrics import MULTIPROCESS_DIR
from stages.composition import load_config

SETUP = "FER_SERVE_SETUP"  # the workers' overrides and model choice, as fer-serve composed them
STOPS = (signal.SIGINT, signal.SIGTERM)
WORKER_START_S = 120  # a new worker loads its model before it serves: the supervisor waits this long for it


def server_config(cfg: Config, app, **more) -> uvicorn.Config:
    """uvicorn's settings from serve.*: frames larger than the upload limit close a WebSocket (1009, message too big);
    a JSON access log replaces uvicorn's lines."""
    return uvicorn.Config(app, host=cfg.serve.host, port=cfg.serve.port, ws_max_size=cfg.serve.max_upload_bytes,
                          access_log=cfg.serve.log_format == "text", **more)


def serve_in_process(cfg: Config, choice: ModelChoice) -> int | None:
    from realtime.serve.app import create_app  # FastAPI: not needed for --help

    app = create_app(cfg, choice)
    stopped = []  # uvicorn shuts down gracefully (requests in flight answered), then hands the signal to these
    for signum in STOPS:
        signal.signal(signum, lambda signum, frame: stopped.append(signum))
    server = uvicorn.Server(server_config(cfg, app))
    app.state.draining = lambda: server.should_exit  # /readyz answers 503 from the stop on
    server.run()
    return stopped[0] if stopped else None


class Workers(Multiprocess):
    """uvicorn's supervisor (restarts a worker that dies; SIGHUP replaces them all), remembering how it was stopped."""

    stopped: int | None = None

    def handle_int(self) -> None:
        self.stopped = signal.SIGINT
        super().handle_int()

    def handle_term(self) -> None:
        self.stopped = signal.SIGTERM
        super().handle_term()


def serve_in_workers(cfg: Config, overrides: list[str], choice: ModelChoice) -> int | None:
    """serve.workers processes on one port. Keys and the model are checked here first (and the model downloaded to
    the cache once), so that a mistake is one line, not a traceback from every worker."""
    access.check_exposure(cfg.serve, access.load_keys(cfg.serve))
    resolve(choice, cfg.tracking, cfg.realtime.cache_dir, registry=True)
    os.environ[SETUP] = json.dumps({"overrides": overrides, "choice": {
        key: None if value is None else str(value) for key, value in asdict(choice).items()}})
    with tempfile.TemporaryDirectory(prefix="fer-serve-metrics-") as metrics_dir:
        os.environ[MULTIPROCESS_DIR] = metrics_dir  # read by prometheus_client as each worker starts
        config = server_config(cfg, f"{__name__}:worker_app", factory=True, workers=cfg.serve.workers,
                               timeout_worker_healthcheck=WORKER_START_S)
        supervisor = Workers(config, sockets=[config.bind_socket()])
        supervisor.run()
    return supervisor.stopped


def worker_app():
    """uvicorn's factory in each worker: the application as fer-serve composed it. Its /readyz turns 503 when the
    worker is told to stop; a reload that moved the model has the supervisor replace every worker."""
    from realtime.serve.app import create_app

    options.setup_logging()
    setup = json.loads(os.environ[SETUP])
    app = create_app(load_config(setup["overrides"]), ModelChoice(**setup["choice"]))
    stopping = []
    for signum in STOPS:  # uvicorn's handlers, installed before the factory runs; ours first notes the stop
        stop = signal.getsignal(signum)
        signal.signal(signum, lambda signum, frame, stop=stop: (stopping.append(signum), stop(signum, frame)))
    app.state.draining = lambda: bool(stopping)
    app.state.moved = lambda: os.kill(os.getppid(), signal.SIGHUP)
    return app
