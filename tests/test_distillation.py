"""Distillation: the loss against hand-computed values, the compact student, and a distilled fit on tiny data."""

import keras
import numpy as np
import pytest

from conftest import compose_config
from emotion.data import dataset
from emotion.tracking import model_io
from emotion.training import augmentation, distillation, trainer
from emotion.training.model import build_model


def test_soften_at_temperature_one_is_identity_and_flattens_above():
    probs = np.array([[0.7, 0.2, 0.1]], np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(distillation.soften(probs, 1.0)), probs, atol=1e-6)
    flat = keras.ops.convert_to_numpy(distillation.soften(probs, 4.0))
    assert flat.max() < 0.7 and flat.min() > 0.1 and flat.sum() == pytest.approx(1)


def test_loss_mixes_cross_entropy_and_scaled_kl():
    labels = np.eye(7, dtype=np.float32)[[0, 3]]
    teacher = np.full((2, 7), 1 / 7, np.float32)
    student = np.array([[0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]], np.float32)
    y_pred = np.concatenate([student, teacher], axis=1)  # the training model's output: student, then teacher
    ce = -np.log(0.4)
    student_t = np.exp(np.log(student) / 2) / np.exp(np.log(student) / 2).sum(axis=1, keepdims=True)
    kl = (teacher * np.log(teacher / student_t)).sum(axis=1).mean()
    for weight in (0.0, 0.5, 1.0):
        loss = distillation.DistillationLoss(temperature=2.0, weight=weight)(labels, y_pred)
        assert float(loss) == pytest.approx((1 - weight) * ce + weight * 4 * kl, rel=1e-4)


def test_the_teacher_sees_the_students_augmented_faces_in_inference_mode():
    def network(dropout: float) -> keras.Model:  # the teacher's dropout would change its outputs in training mode
        inputs = keras.Input((48, 48, 1))
        x = keras.layers.Dropout(dropout)(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x), name="reference")

    student, teacher = network(0.0), network(0.5)
    teacher.set_weights(student.get_weights())
    augment = augmentation.augmenter(compose_config("augment.flip=true", "augment.noise_stddev=0.5").augment)
    wrapper = trainer.training_wrapper(student, augment, None, teacher)
    faces = np.random.default_rng(0).random((4, 48, 48, 1), np.float32)
    out = keras.ops.convert_to_numpy(wrapper(faces, training=True))
    np.testing.assert_array_equal(out[:, :7], out[:, 7:])  # same faces, same weights, no teacher dropout
    assert np.abs(out[:, :7] - keras.ops.convert_to_numpy(student(faces))).max() > 0.01  # the faces were augmented
    assert trainer.saved_part(wrapper) is student and not wrapper.get_layer("teacher").trainable_weights


def test_compact_student_is_a_quarter_of_the_reference():
    compact, reference = build_model(compose_config("model=compact").model), build_model(compose_config().model)
    assert compact.count_params() < reference.count_params() / 3


@pytest.mark.slow
@pytest.mark.parametrize("augment", ["none", "standard"])
def test_distilled_fit_trains_a_student(cfg, workdir, augment):
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    arrays = dataset.load_cache(cfg.data.index_dir)
    model_io.save_model_files(build_model(compose_config("model=compact").model), workdir / "teacher")
    student_cfg = compose_config(f"data.source={cfg.data.source}", "model=compact", f"augment={augment}",
                                 "train.epochs=1", "train.batch_size=8", f"distill.teacher_dir={workdir / 'teacher'}")
    history = keras.callbacks.History()
    model = trainer.fit(student_cfg, arrays, callbacks=[history])
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert model.output_shape == (None, 7) and np.isfinite(history.history["loss"]).all()
