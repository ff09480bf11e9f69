"""Knowledge distillation with Keras 3 ops only: a student learns from labels and a teacher's softened outputs.

The frozen teacher runs in the training model beside the student, on the same augmented faces (see
training.training_wrapper), so its outputs follow the student's: y_pred = [student probabilities (7) | teacher
probabilities (7)], against one-hot (or mixed) labels; the usual `fit` loop and callbacks work unchanged on every
backend. Both networks end in softmax; softening by temperature T is softmax(log(p) / T), which equals
softmax(logits / T).
"""

import keras
from keras import ops

from emotion.data.labels import NUM_CLASSES


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
        student, teacher = y_pred[:, :NUM_CLASSES], y_pred[:, NUM_CLASSES:]
        hard = keras.losses.categorical_crossentropy(y_true, student, label_smoothing=self.label_smoothing)
        student_t, teacher_t = soften(student, self.temperature), soften(teacher, self.temperature)
        soft = keras.losses.kl_divergence(teacher_t, student_t) * self.temperature**2
        return (1 - self.weight) * hard + self.weight * soft

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "weight": self.weight,
                "label_smoothing": self.label_smoothing}


def label_accuracy(y_true, y_pred):
    """The student's accuracy against the labels."""
    return keras.metrics.categorical_accuracy(y_true, y_pred[:, :NUM_CLASSES])


label_accuracy.__name__ = "accuracy"  # logged as accuracy / val_accuracy, like every other run

