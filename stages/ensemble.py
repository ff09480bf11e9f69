"""Average trained models into one ensemble model folder:
`python -m stages.ensemble ensembles/<name> models/a models/b [...]`.

The folder holds an ordinary model (model.json + weights, the members inside), its expected predictions, ensemble.json
(its members) and the test-time views all its members run (theirs, flip when they mirror the faces in different ways,
else plain): score it with `python -m stages.evaluate evaluate.model_dir=ensembles/<name> data.source=...`, distil it
with `dvc exp run -S experiment=distill_ensemble -S distill.teacher_dir=ensembles/<name>`.
"""

import argparse
import json
import logging
from pathlib import Path

from emotion.errors import user_errors_exit


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="the ensemble's model folder to write (created if missing)")
    parser.add_argument("members", nargs="+", help="two or more model folders (model.json + model.weights.h5)")
    args = parser.parse_args(argv)
    from emotion.inference import views  # after parsing: --help starts without TensorFlow
    from emotion.tracking import model_io
    from emotion.tracking.model_files import ENSEMBLE
    from emotion.training import ensemble

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = ensemble.average_of_folders(args.members)
    test_time = views.record(ensemble.members_test_time(args.members))
    folder = model_io.save_model_files(model, args.folder, test_time=test_time)
    model_io.write_expected_predictions(model, folder)
    (folder / ENSEMBLE).write_text(json.dumps({"members": [str(Path(m)) for m in args.members]}, indent=2)
                                          + "\n")
    logging.info("ensemble of %d models -> %s", len(args.members), folder)


if __name__ == "__main__":
    main()
