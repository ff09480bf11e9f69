"""What the realtime applications share on their command line: which model and backend, and how a command ends
(one error line, 130 on Ctrl-C); they read conf/ with stages.composition.load_config."""

import argparse
import logging
import sys
from collections.abc import Callable

from emotion import config
from emotion.errors import user_errors_exit
from emotion.inference.models import ModelChoice
from emotion.project_files import DEFAULT_MODEL


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


def model_choice(args: argparse.Namespace) -> ModelChoice:
    """The model that add_model_options' arguments choose."""
    return ModelChoice(args.run_id, args.model_uri, args.model_dir, args.backend)


def setup_logging() -> None:
    """One-line messages on stderr: the project's progress lines (INFO), only warnings from the libraries under it."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    for name in ("emotion", "realtime"):  # our progress lines, not the converters' chatter
        logging.getLogger(name).setLevel(logging.INFO)


def run_command(run: Callable[[], int]) -> None:
    """Exit with run()'s status, as every command ends (emotion.errors.user_errors_exit)."""
    setup_logging()
    sys.exit(user_errors_exit(run)())
