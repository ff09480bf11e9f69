"""Knowledge distillation with Keras 3 ops only: a student learns from labels and a teacher's softened outputs.

The teacher's probabilities reach the loss one of two ways; the usual `fit` loop and callbacks work unchanged on
every backend with either:
- in the train step: the frozen teacher runs in the training model beside the student, on the same augmented faces
  (see training.training_wrapper), so its outputs follow the student's: y_pred = [student (7) | teacher (7)],
  against one-hot (or mixed) labels y_true;
- computed beforehand (distill.precompute): once per face, as inference views it (the teacher's test-time scheme),
  they follow the labels: y_true = [labels (7) | teacher (7)], against the student's y_pred. The teacher costs one
  pass over the data instead of one per batch, and its targets do not follow the augmentation.
Both networks end in softmax; softening by temperature T is softmax(log(p) / T), which equals softmax(logits / T).
"""

import keras
import numpy as np
from keras import ops

from emotion.data.labels import NUM_CLASSES
from emotion.data.preprocess import to_model_input
from emotion.inference import views


def soften(probs, temperature: float):
    """Probabilities at temperature T from probabilities at temperature 1."""
    return ops.softmax(ops.log(ops.clip(probs, 1e-7, 1.0)) / temperature, axis=-1)


@keras.saving.register_keras_serializable(package="emotion")
class DistillationLoss(keras.losses.Loss):
    """(1 - weight) * cross-entropy(labels) + weight * T^2 * KL(teacher_T || student_T)."""

    def __init__(self, temperature: float = 4.0, weight: float = 0.7, label_smoothing: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature, self.weight, self.label_smoothing = temperature, weight, label_smoothing

    def call(self, y_true, y_pred):
        labels, student, teacher = split(y_true, y_pred)
        hard = keras.losses.categorical_crossentropy(labels, student, label_smoothing=self.label_smoothing)
        student_t, teacher_t = soften(student, self.temperature), soften(teacher, self.temperature)
        soft = keras.losses.kl_divergence(teacher_t, student_t) * self.temperature**2
        return (1 - self.weight) * hard + self.weight * soft

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "weight": self.weight,
                "label_smoothing": self.label_smoothing}


def teacher_targets(teacher: keras.Model, teacher_dir, faces_u8: np.ndarray) -> np.ndarray:
    """The teacher's probabilities (N, 7) on uint8 faces, averaged over its own test-time views (its folder's
    test_time.json), as every inference path of the teacher would return them."""
    def predict(batch_u8: np.ndarray) -> np.ndarray:
        return teacher.predict(to_model_input(batch_u8), batch_size=512, verbose=0)

    return views.read(teacher_dir).predict(predict, faces_u8).astype(np.float32)


def split(y_true, y_pred):
    """(labels, student, teacher) from either layout (see the module's docstring): the teacher's 7 columns follow
    the student's in y_pred when it runs in the train step, and the labels' in y_true when computed beforehand."""
    if y_pred.shape[-1] > NUM_CLASSES:
        return y_true, y_pred[:, :NUM_CLASSES], y_pred[:, NUM_CLASSES:]
    return y_true[:, :NUM_CLASSES], y_pred, y_true[:, NUM_CLASSES:]


def label_accuracy(y_true, y_pred):
    """The student's accuracy against the labels."""
    return keras.metrics.categorical_accuracy(y_true[:, :NUM_CLASSES], y_pred[:, :NUM_CLASSES])


label_accuracy.__name__ = "accuracy"  # logged as accuracy / val_accuracy, like every other run

