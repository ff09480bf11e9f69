"""Fit a configured model on the array cache: schedules, augmentation, class weights, distillation and resume."""

import hashlib
import json
import logging
import shutil
from pathlib import Path

import keras
import numpy as np

from emotion import distillation
from emotion.config import AugmentConfig, DistillConfig, ModelConfig, TrainConfig
from emotion.labels import NUM_CLASSES
from emotion.model import build_model
from emotion.model_io import load_model_files
from emotion.preprocess import to_model_input

log = logging.getLogger(__name__)

BACKUP_SUBDIR = "backup"
STATE_FILE = "state.json"  # which MLflow run the backup belongs to, and the config it was trained with
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")  # what fit logs per epoch


def lr_schedule(cfg: TrainConfig):
    """Learning rate per 0-based epoch.

    step: cfg.lr, then lr_drop_values[i] once lr_drop_epochs[i] epochs are done.
    cosine: cfg.lr decaying along a half cosine towards 0 at the last epoch.
    """

    def step(epoch: int, lr: float = 0.0) -> float:
        rate = cfg.lr
        for drop_epoch, value in zip(cfg.lr_drop_epochs, cfg.lr_drop_values):
            if epoch >= drop_epoch:
                rate = value
        return rate

    def cosine(epoch: int, lr: float = 0.0) -> float:
        return float(cfg.lr * 0.5 * (1 + np.cos(np.pi * epoch / cfg.epochs)))

    return {"step": step, "cosine": cosine}[cfg.schedule]


def sample_weights(label_ids: np.ndarray, mode: str) -> np.ndarray | None:
    """Per-image loss weights: None, or 'balanced' class weights n / (classes * count) as in scikit-learn."""
    if mode == "none":
        return None
    counts = np.bincount(label_ids, minlength=NUM_CLASSES).astype(np.float64)
    weights = len(label_ids) / (NUM_CLASSES * np.maximum(counts, 1))
    return weights[label_ids].astype(np.float32)


def compile_model(model_cfg: ModelConfig, train_cfg: TrainConfig, distill_cfg: DistillConfig | None = None):
    """Build the configured model under the configured precision and compile it for training (or distillation)."""
    keras.mixed_precision.set_dtype_policy(train_cfg.precision)
    model = build_model(model_cfg)
    if distill_cfg and distill_cfg.teacher_dir:
        loss = distillation.DistillationLoss(distill_cfg.temperature, distill_cfg.weight, train_cfg.label_smoothing)
        metrics = [distillation.label_accuracy]
    else:
        loss, metrics = keras.losses.CategoricalCrossentropy(label_smoothing=train_cfg.label_smoothing), ["accuracy"]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=train_cfg.lr), loss=loss, metrics=metrics)
    return model


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled training batches with random flip / shift / rotation applied by Keras preprocessing layers."""

    def __init__(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, batch_size: int,
                 cfg: AugmentConfig, seed: int, teacher: keras.Model | None = None):
        super().__init__()
        self.x, self.y, self.weights, self.batch_size, self.teacher = x, y, weights, batch_size, teacher
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))
        steps = [keras.layers.RandomFlip("horizontal", seed=seed)] if cfg.flip else []
        if cfg.shift_fraction:
            steps.append(keras.layers.RandomTranslation(cfg.shift_fraction, cfg.shift_fraction, "reflect", seed=seed))
        if cfg.rotation_deg:
            steps.append(keras.layers.RandomRotation(cfg.rotation_deg / 360, "reflect", seed=seed))
        self.augment = keras.Sequential(steps)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i: int):
        rows = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        x = self.augment(self.x[rows], training=True)
        y = self.y[rows]
        if self.teacher is not None:  # the teacher sees the same augmented faces as the student
            y = distillation.with_teacher(y, keras.ops.convert_to_numpy(self.teacher(x, training=False)))
        return (x, y) if self.weights is None else (x, y, self.weights[rows])

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))


def fit(
    arrays: dict[str, tuple[np.ndarray, np.ndarray]],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    augment_cfg: AugmentConfig,
    seed: int,
    callbacks: list[keras.callbacks.Callback] = (),
    distill_cfg: DistillConfig | None = None,
) -> keras.Model:
    """Train on arrays['train'], validate on arrays['val']; resumes from train_cfg.checkpoint_dir if a backup is there.

    With distill_cfg.teacher_dir, the model learns from the labels and the teacher's outputs (see distillation).
    Returns the trained model in float32, whatever precision it trained in, so its saved architecture is portable.
    """
    keras.utils.set_random_seed(seed)
    teacher = load_model_files(distill_cfg.teacher_dir) if distill_cfg and distill_cfg.teacher_dir else None
    model = compile_model(model_cfg, train_cfg, distill_cfg)
    x_train, y_train = _model_arrays(*arrays["train"])
    x_val, y_val = _model_arrays(*arrays["val"])

    def targets(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return y if teacher is None else distillation.with_teacher(y, teacher.predict(x, verbose=0))

    weights = sample_weights(arrays["train"][1], train_cfg.class_weight)
    if augment_cfg.enabled:  # the batches ask the teacher themselves, on the augmented faces
        train_data = {"x": AugmentedBatches(x_train, y_train, weights, train_cfg.batch_size, augment_cfg, seed, teacher)}
    else:
        train_data = {"x": x_train, "y": targets(x_train, y_train), "sample_weight": weights,
                      "batch_size": train_cfg.batch_size, "shuffle": True}
    backup = keras.callbacks.BackupAndRestore(Path(train_cfg.checkpoint_dir) / BACKUP_SUBDIR, double_checkpoint=True)
    model.fit(
        **train_data,
        epochs=train_cfg.epochs,
        validation_data=(x_val, targets(x_val, y_val)),
        callbacks=[keras.callbacks.LearningRateScheduler(lr_schedule(train_cfg)), *callbacks, backup],
    )
    return _as_float32(model, model_cfg)


def _model_arrays(faces_u8: np.ndarray, label_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return to_model_input(faces_u8), keras.utils.to_categorical(label_ids, NUM_CLASSES)


def _as_float32(model: keras.Model, model_cfg: ModelConfig) -> keras.Model:
    if keras.mixed_precision.dtype_policy().name == "float32":
        return model
    keras.mixed_precision.set_dtype_policy("float32")
    plain = build_model(model_cfg)
    plain.set_weights(model.get_weights())
    return plain


def fingerprint(settings: dict) -> str:
    """Stable hash of everything that must match for a backup to be resumed (config and data)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def resumable_run(checkpoint_dir: str | Path, settings_hash: str) -> str | None:
    """The MLflow run id of an interrupted fit with the same settings, or None (a stale backup is removed)."""
    state_path, backup = Path(checkpoint_dir) / STATE_FILE, Path(checkpoint_dir) / BACKUP_SUBDIR
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if backup.exists() and state.get("fingerprint") == settings_hash:
        return state["run_id"]
    if backup.exists():
        log.warning("checkpoint in %s was made with another config or data; starting afresh", checkpoint_dir)
    clear_checkpoint(checkpoint_dir)
    return None


def remember_run(checkpoint_dir: str | Path, settings_hash: str, run_id: str) -> None:
    """Record which run the checkpoints in checkpoint_dir belong to, so a restart can resume it."""
    Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    (Path(checkpoint_dir) / STATE_FILE).write_text(json.dumps({"fingerprint": settings_hash, "run_id": run_id}))


def has_checkpoint(checkpoint_dir: str | Path) -> bool:
    """Whether an unfinished fit left a checkpoint in checkpoint_dir."""
    return (Path(checkpoint_dir) / BACKUP_SUBDIR).exists()


def clear_checkpoint(checkpoint_dir: str | Path) -> None:
    """Forget the checkpoint: after a finished fit, or when it can't be resumed."""
    (Path(checkpoint_dir) / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(Path(checkpoint_dir) / BACKUP_SUBDIR, ignore_errors=True)
