"""Accuracy on the clean test split and under fixed, seeded perturbations (box shift and scale, light, contrast,
blur, JPEG), for each model folder, side by side with the drop from clean; each model with its own test-time views
(as the inference paths run it), or plain with --plain.

Run: python -m bench.robustness models/efficient models/reference [--index-dir data/index] [--seed 0]
"""

import argparse

import pandas as pd

from emotion.data import dataset
from emotion.evaluation import scoring
from emotion.evaluation.perturbations import PERTURBATIONS
from emotion.inference import views
from emotion.tracking.model_io import load_model_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", nargs="+", help="model folders (model.json + model.weights.h5)")
    parser.add_argument("--index-dir", default="data/index", help="index whose test split is scored")
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    parser.add_argument("--plain", action="store_true", help="no test-time views, whatever the models' own")
    args = parser.parse_args()
    faces_u8, label_ids = dataset.load_cache(args.index_dir, splits=("test",))["test"]
    inputs = {"clean": faces_u8} | {name: perturb(faces_u8, args.seed) for name, perturb in PERTURBATIONS.items()}
    table = {}
    for folder in args.model_dirs:
        model, test_time = load_model_files(folder), views.TestTime() if args.plain else views.read(folder)
        print(f"{folder}: test-time views {test_time.scheme}")
        table[folder] = {name: scoring.score(label_ids, scoring.predict(model, faces, test_time=test_time)
                                                .argmax(axis=1)).accuracy for name, faces in inputs.items()}
    accuracy = pd.DataFrame(table)
    drop = accuracy.loc["clean"] - accuracy
    out = pd.concat({"accuracy %": 100 * accuracy, "drop (points)": 100 * drop}, axis=1)
    out.columns = [f"{model}: {figure}" for figure, model in out.columns]  # flat headers for the Markdown table
    print(f"test split of {args.index_dir}: {len(label_ids)} faces, perturbation seed {args.seed}")
    print(out.round(2).to_markdown())


if __name__ == "__main__":
    main()
