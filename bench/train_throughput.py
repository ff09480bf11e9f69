"""Training throughput: the pipeline's training.fit against a plain model.fit on the same in-memory arrays.

Both train the reference model in one process on the same images; training time only (validation excluded),
the first epoch (tracing, warm-up) dropped.
Run: python bench/train_throughput.py [--images 4096] [--epochs 3] [--index-dir data/index] [--precision float32]
"""

import argparse
import tempfile
import time

import keras
import numpy as np

from emotion import config, data, training
from emotion.labels import NUM_CLASSES
from emotion.preprocess import to_model_input


class EpochTimer(keras.callbacks.Callback):
    """Seconds of training per epoch, stopped where validation begins."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def load_arrays(index_dir: str, n_images: int) -> dict:
    """Real faces from the index cache when there is one, else random ones."""
    try:
        arrays = data.load_cache(index_dir)
        print(f"images: {index_dir} (first {n_images} train, all val)")
    except Exception:  # noqa: BLE001 - no index yet: benchmark on random faces instead
        rng = np.random.default_rng(0)
        arrays = {s: (rng.integers(0, 256, (n, 48, 48), np.uint8), rng.integers(0, 7, n)) for s, n in
                  (("train", n_images), ("val", 512))}
        print("images: random (no index cache found)")
    faces, labels = arrays["train"]
    return {"train": (faces[:n_images], labels[:n_images]), "val": arrays["val"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per contender (the first is dropped)")
    parser.add_argument("--index-dir", default="data/index")
    parser.add_argument("--precision", default="float32", help="float32 or mixed_bfloat16")
    args = parser.parse_args()
    arrays = load_arrays(args.index_dir, args.images)
    cfg = config.Config()
    cfg.train.epochs, cfg.train.precision = args.epochs, args.precision

    with tempfile.TemporaryDirectory() as tmp:
        cfg.train.checkpoint_dir = tmp
        pipeline_timer = EpochTimer()
        training.fit(arrays, cfg.model, cfg.train, cfg.augment, cfg.seed, [pipeline_timer])

    keras.utils.set_random_seed(cfg.seed)
    model = training.compile_model(cfg.model, cfg.train)
    x, y = to_model_input(arrays["train"][0]), keras.utils.to_categorical(arrays["train"][1], NUM_CLASSES)
    xv, yv = to_model_input(arrays["val"][0]), keras.utils.to_categorical(arrays["val"][1], NUM_CLASSES)
    plain_timer = EpochTimer()
    model.fit(x, y, batch_size=cfg.train.batch_size, epochs=args.epochs, shuffle=True, validation_data=(xv, yv),
              callbacks=[plain_timer], verbose=0)

    rates = {}
    for name, timer in (("pipeline training.fit", pipeline_timer), ("plain model.fit", plain_timer)):
        rates[name] = len(x) / np.median(timer.seconds[1:])
        print(f"{name:>22}: {rates[name]:7.1f} img/s  (epochs {', '.join(f'{s:.1f}s' for s in timer.seconds)})")
    print(f"ratio pipeline/plain: {rates['pipeline training.fit'] / rates['plain model.fit']:.3f}")
    keras.mixed_precision.set_dtype_policy("float32")


if __name__ == "__main__":
    main()
