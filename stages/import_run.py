"""Import an exported run or a shipped model folder into MLflow and register it:
`python -m stages.import_run models/accurate` (then `python -m realtime.webcam` needs no training)."""

import argparse
import logging

from emotion.config import TrackingConfig
from emotion.errors import user_errors_exit


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.import_run", description=__doc__)
    parser.add_argument("folder", help="folder with model.json, model.weights.h5, params.yaml (an ensemble's: "
                                       "ensemble.json) [history.csv, metrics.json, figures, README.md]")
    parser.add_argument("--registered-model", default=TrackingConfig.registered_model,
                        help="registered model to add it to (default: %(default)s)")
    parser.add_argument("--run-file", help="also write the run id here (artifacts/train_run.json lets the evaluate "
                                           "stage score the imported run)")
    args = parser.parse_args(argv)
    from emotion.tracking import export, runs, store  # after parsing: --help starts without TensorFlow or MLflow

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs.setup(TrackingConfig())
    run_id, aliases = export.import_run(args.folder, args.registered_model)
    if args.run_file:
        store.write_run_pointer(run_id, args.run_file)
    logging.info("%s -> MLflow run %s; registry aliases: %s", args.folder, run_id, aliases or "none (no metrics.json)")


if __name__ == "__main__":
    main()
