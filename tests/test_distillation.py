"""Distillation: the loss against hand-computed values, the compact student, and a distilled fit on tiny data."""

import keras
import numpy as np
import pytest

from conftest import compose_config
from emotion.data import dataset
from emotion.data.preprocess import to_model_input
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


def test_targets_with_the_labels_give_the_loss_of_the_teacher_in_the_step():
    rng = np.random.default_rng(0)
    labels = np.eye(7, dtype=np.float32)[[0, 3, 6]]
    student, teacher = (rng.dirichlet(np.ones(7), 3).astype(np.float32) for _ in range(2))
    loss = distillation.DistillationLoss(temperature=3.0, weight=0.6, label_smoothing=0.1)
    in_step = float(loss(labels, np.concatenate([student, teacher], axis=1)))
    assert float(loss(np.concatenate([labels, teacher], axis=1), student)) == pytest.approx(in_step, rel=1e-6)
    assert float(loss(np.concatenate([labels, student], axis=1), student)) < in_step  # its own outputs: no KL


def test_teacher_targets_average_the_teachers_test_time_views(workdir):
    inputs = keras.Input((48, 48, 1))
    logits = keras.layers.Dense(7)(keras.layers.Flatten()(inputs))
    teacher = keras.Model(inputs, keras.layers.Softmax()(logits))
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48), np.uint8)
    (workdir / "teacher").mkdir()
    plain = distillation.teacher_targets(teacher, workdir / "teacher", faces)  # no test_time.json: the face alone
    np.testing.assert_allclose(plain, teacher.predict(to_model_input(faces), verbose=0), atol=1e-6)
    (workdir / "teacher" / "test_time.json").write_text('{"scheme": "flip"}')
    mirrored = teacher.predict(to_model_input(faces[:, :, ::-1]), verbose=0)
    np.testing.assert_allclose(distillation.teacher_targets(teacher, workdir / "teacher", faces),
                               (plain + mirrored) / 2, atol=1e-6)


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
@pytest.mark.parametrize("augment, precompute", [("none", False), ("standard", False), ("standard", True)])
def test_distilled_fit_trains_a_student(cfg, workdir, augment, precompute):
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    arrays = dataset.load_cache(cfg.data.index_dir)
    model_io.save_model_files(build_model(compose_config("model=compact").model), workdir / "teacher")
    student_cfg = compose_config(f"data.source={cfg.data.source}", "model=compact", f"augment={augment}",
                                 "train.epochs=1", "train.batch_size=8", f"distill.teacher_dir={workdir / 'teacher'}",
                                 f"distill.precompute={precompute}")
    history = keras.callbacks.History()
    model = trainer.fit(student_cfg, arrays, callbacks=[history])
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert model.output_shape == (None, 7) and np.isfinite(history.history["loss"]).all()
