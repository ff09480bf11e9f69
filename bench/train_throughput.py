"""Training throughput, in one process on the same images: a plain model.fit on in-memory arrays, the pipeline's
trainer.fit without augmentation, trainer.fit with the configured augmentation (in the compiled train step), and
as a yardstick the same augmentation layers run eagerly on each batch in the input pipeline (how it was done before).
With distill.teacher_dir (e.g. experiment=distill_ensemble), the augmented fit distilled as well, the teacher in the
train step against its targets computed once beforehand (distill.precompute; that pass timed on its own).

Training time only (validation excluded), the first epoch (tracing, warm-up) dropped. The configuration is
conf/ composed with the overrides given, so `experiment=efficient` measures that recipe.
Run: python -m bench.train_throughput [--images 4096] [--epochs 3] [--index-dir data/index] [OVERRIDES...]
"""

import argparse
import dataclasses
import copy
import tempfile
import time

import keras
import numpy as np

from emotion import config
from emotion.config import AugmentConfig
from emotion.data import dataset
from emotion.data.labels import NUM_CLASSES
from emotion.data.preprocess import to_model_input
from emotion.tracking.model_io import load_model_files
from emotion.training import augmentation, distillation, trainer
from stages.composition import load_config


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
        arrays = dataset.load_cache(index_dir)
        print(f"images: {index_dir} (first {n_images} train, first 512 val)")
    except Exception:  # noqa: BLE001 - no index yet: benchmark on random faces instead
        rng = np.random.default_rng(0)
        arrays = {s: (rng.integers(0, 256, (n, 48, 48), np.uint8), rng.integers(0, 7, n)) for s, n in
                  (("train", n_images), ("val", 512))}
        print("images: random (no index cache found)")
    return {split: (faces[:n], labels[:n]) for (split, (faces, labels)), n in
            zip(arrays.items(), (n_images, 512))}


def pipeline_rate(arrays: dict, cfg: config.Config, augment: AugmentConfig) -> EpochTimer:
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as tmp:
        cfg.train.checkpoint_dir = tmp
        trainer.fit(dataclasses.replace(cfg, augment=augment), arrays, callbacks=[timer])
    return timer


class HostAugmented(keras.utils.PyDataset):
    """Batches augmented eagerly by the same Keras layers, one batch at a time, outside the compiled step."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, augment: keras.Sequential):
        super().__init__()
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i: int):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.augment(self.x[rows], training=True), self.y[rows]


def plain_rate(arrays: dict, cfg: config.Config, augment: AugmentConfig | None = None) -> EpochTimer:
    """model.fit on the arrays; with augment, on HostAugmented batches of them."""
    keras.utils.set_random_seed(cfg.seed)
    model = trainer.compile_model(cfg.model, cfg.train)
    x, y = to_model_input(arrays["train"][0]), keras.utils.to_categorical(arrays["train"][1], NUM_CLASSES)
    xv, yv = to_model_input(arrays["val"][0]), keras.utils.to_categorical(arrays["val"][1], NUM_CLASSES)
    timer = EpochTimer()
    if augment is None:
        model.fit(x, y, batch_size=cfg.train.batch_size, epochs=cfg.train.epochs, shuffle=True,
                  validation_data=(xv, yv), callbacks=[timer], verbose=0)
    else:
        model.fit(HostAugmented(x, y, cfg.train.batch_size, augmentation.augmenter(augment)), epochs=cfg.train.epochs,
                  validation_data=(xv, yv), callbacks=[timer], verbose=0)
    keras.mixed_precision.set_dtype_policy("float32")
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per contender (the first is dropped)")
    parser.add_argument("--index-dir", default="data/index")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=efficient")
    args = parser.parse_args()
    cfg = load_config([*args.overrides, f"train.epochs={args.epochs}", "train.warmup_epochs=0"])  # speed only
    arrays = load_arrays(args.index_dir, args.images)
    print(f"model {cfg.model.name} filters {cfg.model.filters} x{cfg.model.convs_per_block}, "
          f"precision {cfg.train.precision}, batch {cfg.train.batch_size}")

    undistilled = dataclasses.replace(cfg, distill=config.DistillConfig())
    timers = {
        "plain model.fit": plain_rate(arrays, copy.deepcopy(undistilled)),
        "trainer.fit, no augmentation": pipeline_rate(arrays, copy.deepcopy(undistilled), AugmentConfig()),
        "trainer.fit, augmented": pipeline_rate(arrays, copy.deepcopy(undistilled), cfg.augment),
        "augmented per batch, eagerly": plain_rate(arrays, copy.deepcopy(undistilled), cfg.augment),
    }
    if cfg.distill.teacher_dir:
        for precompute, name in ((False, "distilled, teacher in the step"), (True, "distilled, targets beforehand")):
            distilled = dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, precompute=precompute))
            timers[name] = pipeline_rate(arrays, distilled, cfg.augment)
    rates = {}
    for name, timer in timers.items():
        rates[name] = args.images / np.median(timer.seconds[1:])
        print(f"{name:>30}: {rates[name]:7.1f} img/s  (epochs {', '.join(f'{s:.1f}s' for s in timer.seconds)})")
    plain, bare, augmented, eager = list(rates.values())[:4]
    print(f"ratio pipeline/plain: {bare / plain:.3f}; augmented/no augmentation: {augmented / bare:.3f}; "
          f"augmentation in the step/eagerly per batch: {augmented / eager:.3f}")
    if cfg.distill.teacher_dir:
        in_step, beforehand = rates["distilled, teacher in the step"], rates["distilled, targets beforehand"]
        faces = np.concatenate([arrays["train"][0], arrays["val"][0]])
        started, teacher = time.perf_counter(), load_model_files(cfg.distill.teacher_dir)
        distillation.teacher_targets(teacher, cfg.distill.teacher_dir, faces)
        print(f"the teacher's targets beforehand, once per training: {time.perf_counter() - started:.1f} s for "
              f"{len(faces)} images")
        print(f"distilled/augmented: teacher in the step {in_step / augmented:.3f}, targets beforehand "
              f"{beforehand / augmented:.3f}; targets beforehand/teacher in the step: {beforehand / in_step:.3f}")


if __name__ == "__main__":
    main()
