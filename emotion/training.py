"""Fit a configured model on the array cache: schedules, augmentation, class weights, distillation and resume."""

import hashlib
import logging

import keras
import numpy as np

from emotion import calibration, distillation
from emotion.config import AugmentConfig, Config, DistillConfig, ModelConfig, TrainConfig
from emotion.distributed import LOCAL, Cluster
from emotion.labels import NUM_CLASSES
from emotion.model import build_model, crop_jitter
from emotion.model_io import load_model_files
from emotion.preprocess import INPUT_SHAPE, to_model_input
from emotion.runs import CheckpointReader, TrainingRun

log = logging.getLogger(__name__)

TRAINING_WRAPPER = "training_wrapper"  # compile_model's model when training-only layers sit in front of the saved one
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")  # what fit logs per epoch
EMA_METRICS = ("val_ema_loss", "val_ema_accuracy")  # and with train.ema, the moving average's (EmaValidation)


def lr_schedule(cfg: TrainConfig):
    """Learning rate per 0-based epoch.

    step: cfg.lr, then lr_drop_values[i] once lr_drop_epochs[i] epochs are done.
    cosine: cfg.lr decaying along a half cosine towards 0 at the last epoch, after warmup_epochs of linear warm-up.
    """

    def step(epoch: int, lr: float = 0.0) -> float:
        rate = cfg.lr
        for drop_epoch, value in zip(cfg.lr_drop_epochs, cfg.lr_drop_values):
            if epoch >= drop_epoch:
                rate = value
        return rate

    def cosine(epoch: int, lr: float = 0.0) -> float:
        if epoch < cfg.warmup_epochs:
            return cfg.lr * (epoch + 1) / cfg.warmup_epochs
        done = (epoch - cfg.warmup_epochs) / (cfg.epochs - cfg.warmup_epochs)
        return float(cfg.lr * 0.5 * (1 + np.cos(np.pi * done)))

    return {"step": step, "cosine": cosine}[cfg.schedule]


def sample_weights(label_ids: np.ndarray, mode: str) -> np.ndarray | None:
    """Per-image loss weights: None, 'balanced' class weights n / (classes * count) as in scikit-learn, or 'sqrt'
    (their square roots, scaled to average 1 over the images)."""
    if mode == "none":
        return None
    counts = np.bincount(label_ids, minlength=NUM_CLASSES).astype(np.float64)
    weights = len(label_ids) / (NUM_CLASSES * np.maximum(counts, 1))
    if mode == "sqrt":
        weights = np.sqrt(weights) / np.sqrt(weights)[label_ids].mean()
    return weights[label_ids].astype(np.float32)


def compile_model(model_cfg: ModelConfig, train_cfg: TrainConfig, distill_cfg: DistillConfig | None = None):
    """Build the configured model under the configured precision and compile it for training (or distillation);
    with random crops, behind the crop jitter (see saved_part)."""
    keras.mixed_precision.set_dtype_policy(train_cfg.precision)
    model = build_model(model_cfg)
    jitter = crop_jitter(model_cfg)
    if jitter is not None:
        model = keras.Sequential([keras.Input(INPUT_SHAPE), jitter, model], name=TRAINING_WRAPPER)
    if distill_cfg and distill_cfg.teacher_dir:
        loss = distillation.DistillationLoss(distill_cfg.temperature, distill_cfg.weight, train_cfg.label_smoothing)
        metrics = [distillation.label_accuracy]
    else:
        loss, metrics = keras.losses.CategoricalCrossentropy(label_smoothing=train_cfg.label_smoothing), ["accuracy"]
    model.compile(optimizer=make_optimizer(train_cfg), loss=loss, metrics=metrics)
    return model


def calibrate(model: keras.Model, arrays: dict[str, tuple[np.ndarray, np.ndarray]], cfg: TrainConfig) -> dict | None:
    """With train.calibrate, the temperature fitted on the validation split and baked into the model (see
    calibration); what calibration.json records, else None."""
    return calibration.calibrate(model, *arrays["val"]) if cfg.calibrate else None


def history_metrics(cfg: TrainConfig) -> tuple[str, ...]:
    """The per-epoch metrics a fit with this config logs."""
    return HISTORY_METRICS + EMA_METRICS if cfg.ema else HISTORY_METRICS


def saved_part(model: keras.Model) -> keras.Model:
    """The model without the training-only layers that compile_model may have put in front of it."""
    return model.layers[-1] if model.name == TRAINING_WRAPPER else model


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam, or SGD with Nesterov momentum; decoupled weight decay when cfg.weight_decay > 0; with cfg.ema, a moving
    average of the weights that replaces them when the fit ends."""
    options = {"weight_decay": cfg.weight_decay or None, "use_ema": cfg.ema, "ema_momentum": cfg.ema_momentum}
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(cfg.lr, momentum=cfg.momentum, nesterov=True, **options)
    return keras.optimizers.Adam(cfg.lr, **options)


def seed_for(seed: int, *keys: int) -> int:
    """A 31-bit seed derived from the run's seed and keys (epoch, generator index)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] % (2**31 - 1))


def reseed(layer: keras.Layer, seed: int) -> None:
    """Restart every random stream (dropout, augmentation) inside layer from seed-derived states."""
    states = [v for v in layer.variables if v.path.endswith("seed_generator_state")]
    for i, state in enumerate(states):
        state.assign(np.array([seed_for(seed, i), 0]).astype(state.dtype))


def augmenter(cfg: AugmentConfig, seed: int) -> keras.Sequential | None:
    """Keras preprocessing layers for cfg's augmentations of [0, 1] faces (N, 48, 48, 1), or None for none.

    Geometry first (flip, shift, zoom, rotation: where and how big the detector's box lands), then photometry
    (brightness, contrast, blur, noise: the camera), then erasing (occlusion).
    """
    unit = (0.0, 1.0)
    steps = [keras.layers.RandomFlip("horizontal", seed=seed)] if cfg.flip else []
    if cfg.shift_fraction:
        steps.append(keras.layers.RandomTranslation(cfg.shift_fraction, cfg.shift_fraction, "reflect", seed=seed))
    if cfg.zoom_fraction:
        steps.append(keras.layers.RandomZoom(cfg.zoom_fraction, fill_mode="reflect", seed=seed))
    if cfg.rotation_deg:
        steps.append(keras.layers.RandomRotation(cfg.rotation_deg / 360, "reflect", seed=seed))
    if cfg.brightness:
        steps.append(keras.layers.RandomBrightness(cfg.brightness, value_range=unit, seed=seed))
    if cfg.contrast:
        steps.append(keras.layers.RandomContrast(cfg.contrast, value_range=unit, seed=seed))
    if cfg.blur_probability:
        steps.append(keras.layers.RandomGaussianBlur(cfg.blur_probability, kernel_size=3, sigma=(0.1, 1.2),
                                                     value_range=unit, seed=seed))
    if cfg.noise_stddev:
        steps.append(keras.layers.GaussianNoise(cfg.noise_stddev, seed=seed))
    if cfg.erasing_probability:
        steps.append(keras.layers.RandomErasing(cfg.erasing_probability, scale=(0.02, 0.2), fill_value=0.5,
                                                value_range=unit, seed=seed))
    return keras.Sequential(steps) if steps else None


class Batches(keras.utils.PyDataset):
    """Training batches in an order drawn from (seed, epoch), optionally augmented by Keras preprocessing layers.

    start_epoch(e) sets the order and the augmentation's random state from the epoch alone, so an epoch draws the
    same batches whether the fit ran through or was resumed there. Under data parallelism every process draws and
    augments the same global batch and feeds its own part of it (Cluster.local_part), so the fit sees what one
    process would.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, batch_size: int,
                 cfg: AugmentConfig, seed: int, teacher: keras.Model | None = None, cluster: Cluster = LOCAL):
        super().__init__()
        self.x, self.y, self.weights, self.batch_size, self.teacher = x, y, weights, batch_size, teacher
        self.seed, self.cluster = seed, cluster
        self.augment = augmenter(cfg, seed)
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng(seed_for(self.seed, epoch)).permutation(len(self.x))
        if self.augment is not None:
            reseed(self.augment, seed_for(self.seed, epoch, 1))

    def __len__(self) -> int:
        return self.cluster.batch_count(len(self.x), self.batch_size)

    def __getitem__(self, i: int):
        rows = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        x = self.x[rows] if self.augment is None else self.augment(self.x[rows], training=True)
        y = self.y[rows]
        if self.teacher is not None:  # the teacher sees the same augmented faces as the student
            y = distillation.with_teacher(y, keras.ops.convert_to_numpy(self.teacher(x, training=False)))
        return self.cluster.local_part((x, y) if self.weights is None else (x, y, self.weights[rows]))


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch's start, derive the batch order, augmentation and dropout streams from (seed, epoch).

    Dropout's random state is not part of a checkpoint: without this a resumed fit would replay the masks of its
    first epoch on the same batches, and its training metrics and weights would drift from the uninterrupted fit.
    """

    def __init__(self, seed: int, batches: Batches):
        super().__init__()
        self.seed, self.batches = seed, batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.start_epoch(epoch)
        reseed(self.model, seed_for(self.seed, epoch, 2))


class EmaValidation(keras.callbacks.Callback):
    """After each epoch, the validation metrics of the weights' moving average too (val_ema_accuracy, ...), beside
    those of the weights themselves, which go on training."""

    def __init__(self, validation):
        super().__init__()
        self.validation = validation

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        weights = [variable.numpy() for variable in self.model.trainable_variables]
        self.model.optimizer.finalize_variable_values(self.model.trainable_variables)  # the average, in place
        x, y = self.validation if isinstance(self.validation, tuple) else (self.validation, None)
        scores = self.model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)
        for variable, value in zip(self.model.trainable_variables, weights):
            variable.assign(value)
        if logs is not None:
            logs.update({f"val_ema_{name}": float(value) for name, value in scores.items()})


def fit(
    arrays: dict[str, tuple[np.ndarray, np.ndarray]],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    augment_cfg: AugmentConfig,
    seed: int,
    callbacks: list[keras.callbacks.Callback] = (),
    distill_cfg: DistillConfig | None = None,
    checkpoint: TrainingRun | CheckpointReader | None = None,
    cluster: Cluster = LOCAL,
) -> keras.Model:
    """Train on arrays['train'], validate on arrays['val'], continuing from checkpoint's last epoch if it has one.

    Every finished epoch is checkpointed before the other callbacks see it. With distill_cfg.teacher_dir, the model
    learns from the labels and the teacher's outputs (see distillation). On a cluster, the model and fit live in
    its scope; batches, augmentation and teacher stay on this process. Returns the trained model in float32,
    whatever precision it trained in, so its saved architecture is portable, and on this process's devices alone.
    """
    keras.utils.set_random_seed(seed)
    teacher = load_model_files(distill_cfg.teacher_dir) if distill_cfg and distill_cfg.teacher_dir else None
    x_train, y_train = _model_arrays(*arrays["train"])
    x_val, y_val = _model_arrays(*arrays["val"])
    if teacher is not None:
        y_val = distillation.with_teacher(y_val, teacher.predict(x_val, verbose=0))
    weights = sample_weights(arrays["train"][1], train_cfg.class_weight)
    batches = Batches(x_train, y_train, weights, train_cfg.batch_size, augment_cfg, seed, teacher, cluster)
    validation = (Batches(x_val, y_val, None, train_cfg.batch_size, AugmentConfig(), seed, cluster=cluster)
                  if cluster.shards_batches else (x_val, y_val))
    with cluster.scope():
        model = compile_model(model_cfg, train_cfg, distill_cfg)
        initial_epoch = checkpoint.restore(model) if checkpoint else 0
        model.fit(
            batches,
            epochs=train_cfg.epochs,
            initial_epoch=initial_epoch,
            shuffle=False,  # the batches shuffle themselves per (seed, epoch); Keras would draw from Python's RNG
            validation_data=validation,
            callbacks=[
                keras.callbacks.LearningRateScheduler(lr_schedule(train_cfg)),
                EpochSeeds(seed, batches),
                *([EmaValidation(validation)] if train_cfg.ema else []),  # before the checkpoint records the logs
                *([checkpoint.callback()] if checkpoint else []),
                *callbacks,
            ],
        )
    return _portable(saved_part(model), model_cfg, cluster)


def fit_in_step(cfg: Config, arrays: dict[str, tuple[np.ndarray, np.ndarray]], cluster: Cluster) -> None:
    """Train as a data-parallel process other than 0: in step with process 0, from its checkpoint, writing nothing."""
    with CheckpointReader(cfg.train.checkpoint_dir, cluster) as checkpoint:
        model = fit(arrays, cfg.model, cfg.train, cfg.augment, cfg.seed, [], cfg.distill, checkpoint, cluster)
    calibrate(model, arrays, cfg.train)  # as process 0 does before saving, so that the weights compare
    log.info("process %d of %d done in step with process 0 (weights %s)", cluster.process_id,
             cluster.num_processes, weights_digest(model))


def weights_digest(model: keras.Model) -> str:
    """Short SHA-256 of the model's weights: equal on every process of a data-parallel fit."""
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]


def _model_arrays(faces_u8: np.ndarray, label_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return to_model_input(faces_u8), keras.utils.to_categorical(label_ids, NUM_CLASSES)


def _portable(model: keras.Model, model_cfg: ModelConfig, cluster: Cluster) -> keras.Model:
    if keras.mixed_precision.dtype_policy().name == "float32" and not cluster.shards_batches:
        return model
    keras.mixed_precision.set_dtype_policy("float32")
    plain = build_model(model_cfg)
    plain.set_weights(model.get_weights())
    return plain
