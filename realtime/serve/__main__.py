"""Serve emotion recognition over HTTP: `python -m realtime.serve` (installed: `fer-serve`), then open
http://127.0.0.1:8000 for the live webcam page, or /docs for the API.

The model is chosen as in fer-webcam: --run-id, --model-uri or --model-dir; by default the registry's champion, and
without an MLflow store the shipped model. POST /v1/reload (or serve.reload_poll_s=N) follows a moved alias.
"""

import argparse
import logging
import signal

from emotion.errors import user_errors_exit
from realtime import options
from stages.composition import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m realtime.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_model_options(parser)
    parser.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1 = this machine only)")
    parser.add_argument("--port", type=int, help="port to listen on (default: serve.port, 8000)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. serve.reload_poll_s=60 "
                        "serve.max_upload_bytes=5000000 realtime.min_neighbors=4")
    return parser.parse_args(argv)


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    options.setup_logging()
    args = parse_args(argv)
    where = [f"serve.{key}={value}" for key, value in (("host", args.host), ("port", args.port)) if value is not None]
    overrides = [*args.overrides, *where]
    cfg = load_config(overrides)  # --host and --port checked by the schema, as the overrides are
    from realtime.serve import processes  # uvicorn: not needed for --help

    if cfg.serve.workers > 1:
        stopped = processes.serve_in_workers(cfg, overrides, options.model_choice(args))
    else:
        stopped = processes.serve_in_process(cfg, options.model_choice(args))
    if stopped == signal.SIGINT:
        raise KeyboardInterrupt  # 130, as every command ends on Ctrl-C
    if stopped:  # a service manager's stop: a clean exit
        logging.getLogger("realtime.serve").info("stopped on SIGTERM after answering the requests in flight")


if __name__ == "__main__":
    main()
