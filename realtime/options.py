"""What the realtime applications share on their command line: which model and backend, and the config composed
from conf/ with Hydra overrides, and how a command ends (one error line, 130 on Ctrl-C)."""

import argparse
import logging
import sys
from collections.abc import Callable

from hydra import compose, initialize_config_dir

from emotion import config
from emotion.errors import UserError
from emotion.project_files import DEFAULT_MODEL, project_path


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--run-id / --model-uri / --model-dir (one of them; default the champion, else the shipped model), --backend."""
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--run-id", help="MLflow run whose model to use")
    model.add_argument("--model-uri", help="models:/<name>@<alias>, models:/<name>/<version> or runs:/<id>/model "
                                           "(default: the registry's champion; without an MLflow store, the "
                                           f"shipped model models/{DEFAULT_MODEL})")
    model.add_argument("--model-dir", help="a model folder (model.json + model.weights.h5, e.g. models/efficient): "
                                           "no MLflow store needed")
    parser.add_argument("--backend", choices=config.BACKENDS, help="inference backend (default: "
                        "realtime.backend, auto = fastest available)")


def load_config(overrides: list[str]) -> config.Config:
    """conf/ composed with Hydra overrides (e.g. realtime.scale_factor=1.2) and checked against the schema."""
    with initialize_config_dir(str(project_path("conf")), version_base="1.3"):
        return config.validate(compose("config", overrides=overrides))


def setup_logging() -> None:
    """One-line messages on stderr: the project's progress lines (INFO), only warnings from the libraries under it."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    for name in ("emotion", "realtime"):  # our progress lines, not the converters' chatter
        logging.getLogger(name).setLevel(logging.INFO)


def run_command(run: Callable[[], int]) -> None:
    """Exit with run()'s status: a UserError as one `error:` line, Ctrl-C as 130 (what run wrote so far is kept)."""
    setup_logging()
    try:
        sys.exit(run())
    except UserError as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:
        sys.exit(130)
