"""Knowledge distillation with Keras 3 ops only: a student learns from labels and a teacher's softened outputs.

Targets carry both: y = [one-hot labels (7) | teacher probabilities (7)], so the usual `fit` loop, augmentation
batches and callbacks work unchanged on every backend. Both networks end in softmax; softening by temperature T is
softmax(log(p) / T), which equals softmax(logits / T).
"""

import keras
import numpy as np
from keras import ops

from emotion.labels import NUM_CLASSES


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
        labels, teacher = y_true[:, :NUM_CLASSES], y_true[:, NUM_CLASSES:]
        hard = keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)
        student_t, teacher_t = soften(y_pred, self.temperature), soften(teacher, self.temperature)
        soft = keras.losses.kl_divergence(teacher_t, student_t) * self.temperature**2
        return (1 - self.weight) * hard + self.weight * soft

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "weight": self.weight,
                "label_smoothing": self.label_smoothing}


def label_accuracy(y_true, y_pred):
    """Accuracy against the one-hot half of distillation targets."""
    return keras.metrics.categorical_accuracy(y_true[:, :NUM_CLASSES], y_pred)


label_accuracy.__name__ = "accuracy"  # logged as accuracy / val_accuracy, like every other run


def with_teacher(y_onehot: np.ndarray, teacher_probs: np.ndarray) -> np.ndarray:
    """Distillation targets: one-hot labels and the teacher's probabilities side by side."""
    return np.concatenate([y_onehot, teacher_probs], axis=1).astype(np.float32)
