"""Fit a trained model's temperature (and class offsets) again on the validation faces it held out:
`python -m stages.calibrate models/a calibrated/a --class-bias [--source fer2013.zip]`.

The faces are drawn again from the model folder's params.yaml and checked against its training-data hash, so a
model of any split seed is calibrated on its own held-out faces: how an ensemble's members, trained with different
seeds, each get their class offsets before `python -m stages.ensemble` averages them. The new folder holds the model,
calibration.json (T, offsets, validation scores before and after) and its params, history and views; quantize it
again for int8, and score it with `python -m stages.evaluate evaluate.model_dir=...`.
"""

import argparse
import logging

from emotion.config import DEFAULT_SOURCE
from emotion.errors import user_errors_exit


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a trained model folder (model files, params.yaml, tags.json)")
    parser.add_argument("out", help="where to write the calibrated model (created if missing)")
    parser.add_argument("--class-bias", action="store_true",
                        help="fit per-class offsets for macro-F1 too (as train.class_bias does)")
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help="FER2013 as the model was trained on it (default: FER2013_SOURCE, else Kaggle)")
    args = parser.parse_args(argv)
    from emotion.training import recalibration  # after parsing: --help starts without TensorFlow

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    recalibration.recalibrate(args.folder, args.out, args.source, args.class_bias)


if __name__ == "__main__":
    main()
