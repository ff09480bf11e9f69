"""Fit a configured model on the array cache: schedules, augmentation, class weights, distillation and resume."""

import hashlib
import logging
import time

import keras
import numpy as np

from emotion.config import AugmentConfig, Config, DistillConfig, ModelConfig, TrainConfig
from emotion.data.labels import NUM_CLASSES
from emotion.data.preprocess import INPUT_SHAPE, to_model_input
from emotion.evaluation import calibration
from emotion.tracking.model_io import load_model_files
from emotion.training import distillation
from emotion.training.augmentation import augmenter
from emotion.training.checkpoints import CheckpointFolder, CheckpointReader
from emotion.training.distributed import LOCAL, Cluster
from emotion.training.model import build_model, crop_jitter
from emotion.training.schedules import lr_schedule, make_optimizer

log = logging.getLogger(__name__)

TRAINING_WRAPPER = "training_wrapper"  # compile_model's model when training-only layers sit in front of the saved one
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")  # what fit logs per epoch
EMA_METRICS = ("val_ema_loss", "val_ema_accuracy")  # and with train.ema, the moving average's (EmaValidation)



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


def compile_model(model_cfg: ModelConfig, train_cfg: TrainConfig, augment_cfg: AugmentConfig | None = None,
                  distill_cfg: DistillConfig | None = None, teacher: keras.Model | None = None) -> keras.Model:
    """Build the configured model under the configured precision and compile it for training, or for distillation
    with distill_cfg.teacher_dir (teacher: the one that runs in the train step; None when its targets come with the
    labels); the training-only layers (augmentation, crop jitter, the frozen teacher) sit in a wrapper around it
    (see training_wrapper, saved_part)."""
    keras.mixed_precision.set_dtype_policy(train_cfg.precision)
    model = training_wrapper(build_model(model_cfg), augmenter(augment_cfg or AugmentConfig()),
                             crop_jitter(model_cfg), teacher)
    if distill_cfg is not None and distill_cfg.teacher_dir:
        loss = distillation.DistillationLoss(distill_cfg.temperature, distill_cfg.weight, train_cfg.label_smoothing)
        metrics = [distillation.label_accuracy]
    else:
        loss, metrics = keras.losses.CategoricalCrossentropy(label_smoothing=train_cfg.label_smoothing), ["accuracy"]
    model.compile(optimizer=make_optimizer(train_cfg), loss=loss, metrics=metrics)
    return model


def training_wrapper(model: keras.Model, augment: keras.Sequential | None, jitter: keras.Layer | None,
                     teacher: keras.Model | None) -> keras.Model:
    """model behind the layers only training runs, all in the compiled train step: augmentation of the [0, 1] faces,
    the crop jitter, and beside the student a frozen teacher that sees the same augmented faces (its probabilities
    follow the student's in the output, as DistillationLoss reads them). The model itself when there are none."""
    if augment is None and jitter is None and teacher is None:
        return model
    inputs = keras.Input(INPUT_SHAPE)
    faces = inputs if augment is None else augment(inputs)
    outputs = model(faces if jitter is None else jitter(faces))
    if teacher is not None:
        outputs = keras.layers.Concatenate(name="student_teacher", dtype="float32")([outputs, FrozenTeacher(teacher)(faces)])
    wrapper = keras.Model(inputs, outputs, name=TRAINING_WRAPPER)
    wrapper.student_name = model.name
    return wrapper


def calibrate(model: keras.Model, arrays: dict[str, tuple[np.ndarray, np.ndarray]], cfg: TrainConfig) -> dict | None:
    """With train.calibrate, the temperature (and with train.class_bias the class offsets) fitted on the validation
    split and baked into the model (see calibration); what calibration.json records, else None."""
    return calibration.calibrate(model, *arrays["val"], class_bias=cfg.class_bias) if cfg.calibrate else None


def history_metrics(cfg: TrainConfig) -> tuple[str, ...]:
    """The per-epoch metrics a fit with this config logs."""
    return HISTORY_METRICS + EMA_METRICS if cfg.ema else HISTORY_METRICS


class FrozenTeacher(keras.layers.Layer):
    """The teacher in inference mode (no dropout, BatchNorm's moving statistics) and untrained, whatever mode the
    training model runs in; a layer of its own name, as a member may share the student's."""

    def __init__(self, teacher: keras.Model):
        super().__init__(name="teacher", trainable=False, dtype="float32")
        self.teacher = teacher

    def call(self, faces):
        return self.teacher(faces, training=False)


def saved_part(model: keras.Model) -> keras.Model:
    """The model without the training-only layers that compile_model may have put around it."""
    return model.get_layer(model.student_name) if model.name == TRAINING_WRAPPER else model



def seed_for(seed: int, *keys: int) -> int:
    """A 31-bit seed derived from the run's seed and keys (epoch, generator index)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] % (2**31 - 1))


def reseed(layer: keras.Layer, seed: int) -> None:
    """Restart every random stream (dropout, augmentation) inside layer from seed-derived states."""
    states = [v for v in layer.variables if v.path.endswith("seed_generator_state")]
    for i, state in enumerate(states):
        state.assign(np.array([seed_for(seed, i), 0]).astype(state.dtype))



class Batches(keras.utils.PyDataset):
    """Training batches in an order drawn from (seed, epoch), optionally mixed up (keras.layers.MixUp).

    start_epoch(e) sets the order and the mixup's random state from the epoch alone, so an epoch draws the same
    batches whether the fit ran through or was resumed there. Under data parallelism every process draws the same
    global batch and feeds its own part of it (Cluster.local_part), so the fit sees what one process would.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, batch_size: int, seed: int,
                 mixup_alpha: float = 0.0, cluster: Cluster = LOCAL):
        super().__init__()
        self.x, self.y, self.weights, self.batch_size, self.seed, self.cluster = x, y, weights, batch_size, seed, cluster
        self.mixup = keras.layers.MixUp(mixup_alpha, dtype="float32") if mixup_alpha else None
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng(seed_for(self.seed, epoch)).permutation(len(self.x))
        if self.mixup is not None:
            reseed(self.mixup, seed_for(self.seed, epoch, 1))

    def __len__(self) -> int:
        return self.cluster.batch_count(len(self.x), self.batch_size)

    def __getitem__(self, i: int):
        rows = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        x, y = self.x[rows], self.y[rows]
        if self.mixup is not None:
            mixed = self.mixup({"images": x, "labels": y}, training=True)
            x, y = (keras.ops.convert_to_numpy(mixed[key]) for key in ("images", "labels"))
        return self.cluster.local_part((x, y) if self.weights is None else (x, y, self.weights[rows]))


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch's start, derive the batch order, mixup, augmentation and dropout streams from (seed, epoch).

    The layers' random states are not part of a checkpoint: without this a resumed fit would replay the masks and
    augmentations of its first epoch on the same batches, and its weights would drift from the uninterrupted fit.
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
    cfg: Config,
    arrays: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    callbacks: list[keras.callbacks.Callback] = (),
    checkpoint: CheckpointFolder | CheckpointReader | None = None,
    cluster: Cluster = LOCAL,
) -> keras.Model:
    """Train cfg's model (cfg.model, cfg.train, cfg.augment, cfg.distill, cfg.seed) on arrays['train'], validate on
    arrays['val'], continuing from checkpoint's last epoch if it has one.

    Every finished epoch is checkpointed before the other callbacks see it. Augmentation runs inside the compiled
    train step (see training_wrapper). With cfg.distill.teacher_dir, the model learns from the labels and the
    teacher's outputs, in the train step or computed beforehand (cfg.distill.precompute; see distillation). On a cluster, the model, teacher and fit live in its scope; the batches
    are drawn on this process. Returns the trained model in float32, whatever precision it trained in, so its saved
    architecture is portable, and on this process's devices alone.
    """
    model_cfg, train_cfg, augment_cfg, distill_cfg, seed = cfg.model, cfg.train, cfg.augment, cfg.distill, cfg.seed
    keras.utils.set_random_seed(seed)
    x_train, y_train = _model_arrays(*arrays["train"])
    x_val, y_val = _model_arrays(*arrays["val"])
    in_step = distill_cfg.teacher_dir and not distill_cfg.precompute  # the teacher runs in the train step
    if distill_cfg.teacher_dir and distill_cfg.precompute:  # its targets follow the labels (see distillation)
        started, teacher = time.perf_counter(), load_model_files(distill_cfg.teacher_dir)
        log.info("the teacher's targets for %d faces (%s, its test-time views) ...", len(x_train) + len(x_val),
                 distill_cfg.teacher_dir)
        y_train, y_val = (np.concatenate([y, distillation.teacher_targets(teacher, distill_cfg.teacher_dir,
                                                                           arrays[split][0])], axis=1)
                          for split, y in (("train", y_train), ("val", y_val)))
        log.info("... done in %.0f s", time.perf_counter() - started)
    weights = sample_weights(arrays["train"][1], train_cfg.class_weight)
    batches = Batches(x_train, y_train, weights, train_cfg.batch_size, seed, augment_cfg.mixup_alpha, cluster)
    validation = (Batches(x_val, y_val, None, train_cfg.batch_size, seed, cluster=cluster)
                  if cluster.shards_batches else (x_val, y_val))
    with cluster.scope():
        teacher = load_model_files(distill_cfg.teacher_dir) if in_step else None
        model = compile_model(model_cfg, train_cfg, augment_cfg, distill_cfg, teacher)
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
        model = fit(cfg, arrays, checkpoint=checkpoint, cluster=cluster)
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
