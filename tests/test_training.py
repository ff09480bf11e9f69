"""Schedule, augmentation, mixed precision, and a tracked run that is interrupted and resumed."""

from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import compose_config
from emotion.data import dataset
from emotion.errors import TrainingInterrupted
from emotion.tracking import model_files, model_io, runs
from emotion.training import checkpoints, schedules, tracked, trainer


def test_step_schedule_drops_after_epochs_20_and_30():
    schedule = schedules.lr_schedule(compose_config().train)
    rates = [schedule(epoch) for epoch in range(40)]  # Keras epochs are 0-based
    assert rates[:20] == [5e-4] * 20 and rates[20:30] == [2.5e-4] * 10 and rates[30:] == [5e-5] * 10


def test_cosine_schedule_falls_from_lr_towards_zero():
    schedule = schedules.lr_schedule(compose_config("train.schedule=cosine", "train.epochs=10").train)
    rates = [schedule(epoch) for epoch in range(10)]
    assert rates[0] == 5e-4 and rates[5] == pytest.approx(2.5e-4) and 0 < rates[9] < 2e-5
    assert rates == sorted(rates, reverse=True)


def test_balanced_sample_weights_favour_rare_classes():
    labels = np.array([0] * 6 + [1] * 2 + [2, 3, 4, 5, 6] * 2)
    weights = trainer.sample_weights(labels, "balanced")
    assert weights[0] == pytest.approx(len(labels) / (7 * 6)) and weights[6] == pytest.approx(len(labels) / (7 * 2))
    assert np.bincount(labels, weights=weights)[:2] == pytest.approx([len(labels) / 7] * 2)
    assert trainer.sample_weights(labels, "none") is None


def test_strong_experiment_composes_on_top_of_the_reference():
    strong, reference = compose_config("experiment=strong"), compose_config()
    assert strong.model.filters == reference.model.filters and strong.model.convs_per_block == 2
    assert strong.augment.enabled and strong.train.schedule == "cosine" and strong.model.test_time == "flip"
    assert (strong.train.label_smoothing, strong.train.class_weight) == (0.1, "balanced")


def test_mixed_up_batches_blend_faces_and_labels_alike():
    x = np.random.default_rng(0).random((10, 48, 48, 1), dtype=np.float32)
    y = keras.utils.to_categorical(np.arange(10) % 7, 7)
    batches = trainer.Batches(x, y, np.arange(10, dtype=np.float32), 4, seed=0, mixup_alpha=0.4)
    assert len(batches) == 3
    xb, yb, wb = batches[0]
    rows = np.sort(batches.order[:4])
    assert np.array_equal(wb, rows) and xb.shape == (4, 48, 48, 1)
    np.testing.assert_allclose(yb.sum(axis=1), 1, atol=1e-6)
    # each face is lam * its own + (1 - lam) * another's of the batch (lam from its label), and so is its label
    faces, labels = x[rows], y[rows]
    for k in range(4):
        lam = yb[k, labels[k].argmax()] if not np.array_equal(yb[k], labels[k]) else None
        blends = [(lam if lam is not None else 1.0) * faces[k] + (1 - (lam if lam is not None else 1.0)) * faces[j]
                  for j in range(4)]
        j = int(np.argmin([np.abs(xb[k] - blend).max() for blend in blends]))
        assert np.abs(xb[k] - blends[j]).max() < 1e-5 or lam is None
        if lam is not None:
            np.testing.assert_allclose(yb[k], lam * labels[k] + (1 - lam) * labels[j], atol=1e-5)
    assert not np.allclose(xb, faces)


def test_batch_order_and_mixup_depend_on_the_epoch_alone():
    x = np.random.default_rng(0).random((10, 48, 48, 1), dtype=np.float32)
    y = keras.utils.to_categorical(np.arange(10) % 7, 7)
    first, second = (trainer.Batches(x, y, None, 4, seed=3, mixup_alpha=0.4) for _ in range(2))
    for epoch in (0, 1, 2):  # the second loader jumps straight to epoch 2, as a resumed fit does
        first.start_epoch(epoch)
        epoch_two = first[0]
    second.start_epoch(2)
    assert np.array_equal(first.order, second.order)
    for ours, theirs in zip(epoch_two, second[0]):
        np.testing.assert_array_equal(ours, theirs)
    second.start_epoch(1)
    assert not np.array_equal(first.order, second.order)


@pytest.fixture
def indexed(cfg):
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    return dataset.load_cache(cfg.data.index_dir)


class Interrupt(keras.callbacks.Callback):
    """Stops a fit like Ctrl-C after the given number of epochs."""

    def __init__(self, after: int):
        super().__init__()
        self.after = after

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.after:
            raise KeyboardInterrupt


def interrupted_run(cfg, indexed, after: int) -> str:
    """Start a tracked run that is stopped after `after` epochs; return its run id."""
    runs.setup(cfg.tracking)
    with pytest.raises(TrainingInterrupted, match=f"checkpoint of epoch {after} is in"):
        tracked.train_tracked(cfg, indexed, callbacks=[Interrupt(after=after)])
    return MlflowClient().search_runs([mlflow.get_experiment_by_name("fer2013").experiment_id])[0].info.run_id


def logged_steps(run_id: str, metric: str = "loss") -> list[int]:
    return [m.step for m in MlflowClient().get_metric_history(run_id, metric)]


@pytest.mark.slow
def test_interrupted_run_resumes_in_the_same_run_without_repeating_epochs(cfg, indexed, mlflow_store):
    cfg.train.epochs = 3
    first = interrupted_run(cfg, indexed, after=2)
    assert logged_steps(first) == [1, 2]
    run_id, metrics = tracked.train_tracked(cfg, indexed)
    assert run_id == first
    assert logged_steps(run_id, "val_accuracy") == [1, 2, 3]
    assert metrics["epochs"] == 3
    assert not list(Path(cfg.train.checkpoint_dir).glob("*.weights.h5"))


@pytest.mark.slow
@pytest.mark.parametrize("key, value", [("resume", False), ("lr", 1e-3)])
def test_resume_false_or_a_changed_config_start_a_new_run(cfg, indexed, mlflow_store, key, value):
    cfg.train.epochs = 2
    interrupted = interrupted_run(cfg, indexed, after=1)
    setattr(cfg.train, key, value)
    run_id, _ = tracked.train_tracked(cfg, indexed)
    assert run_id != interrupted
    assert logged_steps(run_id) == [1, 2]


@pytest.mark.parametrize("override, resumes", [
    ("evaluate.register=false", True), ("realtime.detect_every=3", True), ("serve.port=9000", True),
    ("train.resume=false", True), ("train.lr=0.001", False), ("augment.flip=true", False), ("seed=7", False)])
def test_a_checkpoint_resumes_across_changes_that_do_not_shape_training(override, resumes):
    before = checkpoints.settings_of(compose_config(), "hash")
    assert (checkpoints.settings_of(compose_config(override), "hash") == before) == resumes


@pytest.mark.slow
def test_mixed_precision_training_saves_a_float32_model(cfg, indexed):
    cfg.train.precision = "mixed_bfloat16"
    model = trainer.fit(cfg, indexed)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert keras.mixed_precision.dtype_policy().name == "float32"


@pytest.mark.slow
def test_strong_recipe_trains_an_epoch(kaggle_folder, workdir, indexed):
    cfg = compose_config(f"data.source={kaggle_folder}", "experiment=strong", "train.epochs=1", "train.batch_size=8")
    model = trainer.fit(cfg, indexed)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == 8
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    cfg.train.precision = "float32"
    assert trainer.compile_model(cfg.model, cfg.train).loss.label_smoothing == 0.1


def test_cosine_warm_up_rises_linearly_then_decays():
    schedule = schedules.lr_schedule(compose_config("train.schedule=cosine", "train.epochs=10", "train.lr=0.1",
                                                   "train.warmup_epochs=2").train)
    rates = [schedule(epoch) for epoch in range(10)]
    assert rates[:3] == [pytest.approx(0.05), pytest.approx(0.1), pytest.approx(0.1)]
    assert rates[2:] == sorted(rates[2:], reverse=True) and rates[-1] < 0.01


def test_sqrt_class_weights_lie_between_none_and_balanced():
    labels = np.array([0] * 8 + [1] * 2)
    balanced, sqrt = trainer.sample_weights(labels, "balanced"), trainer.sample_weights(labels, "sqrt")
    assert sqrt.mean() == pytest.approx(1.0)
    assert 1 < sqrt[-1] / sqrt[0] < balanced[-1] / balanced[0]
    assert sqrt[-1] / sqrt[0] == pytest.approx(2.0)  # sqrt(8 / 2)


@pytest.mark.slow
def test_efficient_experiment_trains_an_epoch_with_every_augmentation(kaggle_folder, workdir, indexed):
    cfg = compose_config(f"data.source={kaggle_folder}", "experiment=efficient", "train.epochs=1",
                         "train.warmup_epochs=0", "train.batch_size=8")
    assert cfg.train.optimizer == "adam" and cfg.train.weight_decay and cfg.model.filters == [32, 64, 128, 256]
    cfg.augment.mixup_alpha = 0.2
    assert all(value for value in vars(cfg.augment).values())  # every augmentation is on, mixup too
    model = trainer.fit(cfg, indexed)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == 8
    cfg.train.optimizer = "sgd"
    assert isinstance(schedules.make_optimizer(cfg.train), keras.optimizers.SGD)


@pytest.mark.slow
def test_the_moving_average_is_validated_beside_the_weights_and_becomes_the_model(cfg, indexed):
    cfg.train.epochs, cfg.train.ema, cfg.train.ema_momentum = 2, True, 0.9
    history = keras.callbacks.History()
    model = trainer.fit(cfg, indexed, callbacks=[history])
    logs = history.history
    assert len(logs["val_ema_accuracy"]) == len(logs["val_accuracy"]) == 2
    assert logs["val_ema_loss"][-1] != logs["val_loss"][-1]  # the average is not the weights
    x_val, y_val = trainer._model_arrays(*indexed["val"])
    final = model.evaluate(x_val, y_val, batch_size=256, verbose=0, return_dict=True)
    assert final["accuracy"] == logs["val_ema_accuracy"][-1]
    assert final["loss"] == pytest.approx(logs["val_ema_loss"][-1], rel=1e-6)


@pytest.mark.slow
def test_a_resumed_training_ends_with_the_same_moving_average_and_crops(cfg, indexed, mlflow_store):
    cfg.train.epochs, cfg.train.ema, cfg.train.ema_momentum = 2, True, 0.9
    cfg.model.crop_px, cfg.model.crop_jitter_px = 44, 2
    straight = trainer.fit(cfg, indexed)
    temperature = trainer.calibrate(straight, indexed, cfg.train)["temperature"]  # as the tracked run does
    interrupted_run(cfg, indexed, after=1)
    run_id, _ = tracked.train_tracked(cfg, indexed)
    folder = runs.download_model(run_id)
    assert model_files.calibration_of(folder) == (temperature, None)
    resumed = model_io.load_model_files(folder)
    for ours, theirs in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
