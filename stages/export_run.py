"""Export a tracked run to a self-contained folder: `python -m stages.export_run RUN_ID models/<name>`."""

import argparse
import logging

from emotion.config import TrackingConfig
from emotion.errors import user_errors_exit


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.export_run", description=__doc__)
    parser.add_argument("run_id", help="the MLflow run to export (32 hex characters; mlflow ui lists them)")
    parser.add_argument("folder", help="where to write it, e.g. models/<name> (created if missing)")
    args = parser.parse_args(argv)
    from emotion.tracking import export, runs  # after parsing: --help starts without TensorFlow or MLflow

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs.setup(TrackingConfig())
    logging.info("run %s -> %s", args.run_id, export.export_run(args.run_id, args.folder))


if __name__ == "__main__":
    main()
