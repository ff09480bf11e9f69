"""Test accuracy of a model folder's float model (Keras) against its int8 models (TFLite on LiteRT, ONNX), on the
same test faces, all of them and those with no copy in the training data; with the model's own test-time views, as
the inference paths run them (--test-time plain, flip or crops for others).

Run: python -m bench.quantized_accuracy MODEL_DIR [--index-dir data/index] [--test-time plain]   (make the int8 models first with
python -m realtime.quantize MODEL_DIR). Prints each accuracy and its difference to float32 in points; ship an int8
model only if it loses at most 0.5 points.
"""

import argparse
from pathlib import Path

from emotion.data import dataset
from emotion.evaluation import scoring
from emotion.inference import views
from emotion.inference.backends import INT8_BACKENDS, load_backend
from emotion.tracking.model_io import load_model_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--index-dir", default="data/index")
    parser.add_argument("--test-time", default="model", help="views: model (its own), plain, flip or crops")
    args = parser.parse_args()
    test_time = views.chosen(args.model_dir, args.test_time)
    faces_u8, label_ids = dataset.load_cache(args.index_dir, splits=("test",))["test"]
    unique = dataset.without_training_copies(dataset.load_manifest(args.index_dir))
    probs = {"float32 Keras": scoring.predict(load_model_files(args.model_dir), faces_u8, test_time=test_time)}
    for name, (file, _) in INT8_BACKENDS.items():
        if (Path(args.model_dir) / file).exists():
            probs[name] = load_backend(args.model_dir, name, args.test_time).predict(faces_u8)
        else:
            print(f"{name}: no {file} in {args.model_dir}")
    print(f"test images: {len(label_ids)}, {unique.sum()} with no copy in training; test-time views: "
          f"{test_time.scheme} ({test_time.count} per face)")
    print(f"{'model':<14} {'accuracy':>8} {'macro-F1':>8} {'no copy':>8} {'points vs float32':>18}")
    reference = None
    for name, p in probs.items():
        predicted = p.argmax(axis=1)
        scores = scoring.score(label_ids, predicted)
        reference = scores.accuracy if reference is None else reference
        no_copy = scoring.score(label_ids[unique], predicted[unique]).accuracy
        print(f"{name:<14} {scores.accuracy:8.4f} {scores.macro_f1:8.4f} {no_copy:8.4f} "
              f"{100 * (scores.accuracy - reference):+18.2f}")


if __name__ == "__main__":
    main()
