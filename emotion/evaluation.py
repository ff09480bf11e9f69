"""Score a model on held-out faces: accuracy, macro/weighted F1, per-class precision/recall/F1, confusion matrix."""

from dataclasses import dataclass

import keras
import numpy as np
from sklearn import metrics

from emotion.labels import CLASS_NAMES
from emotion.preprocess import to_model_input


@dataclass
class Scores:
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class: dict[str, dict[str, float]]  # class -> precision, recall, f1, support
    confusion: np.ndarray  # (7, 7) counts, rows true, columns predicted

    @classmethod
    def from_report(cls, report: dict) -> "Scores":
        """Scores back from a test report (reports/test.json, a model folder's metrics.json)."""
        return cls(report["accuracy"], report["macro_f1"], report["weighted_f1"], report["per_class"],
                   np.array(report["confusion_matrix"]))

    def flat(self, prefix: str = "test_") -> dict[str, float]:
        """Scalar metrics named for MLflow: test_accuracy, test_macro_f1, test_recall_angry, ..."""
        flat = {f"{prefix}accuracy": self.accuracy, f"{prefix}macro_f1": self.macro_f1,
                f"{prefix}weighted_f1": self.weighted_f1}
        for name, row in self.per_class.items():
            flat.update({f"{prefix}{key}_{name}": value for key, value in row.items() if key != "support"})
        return flat


def predict(model: keras.Model, faces_u8: np.ndarray, batch_size: int = 256, tta_flip: bool = False) -> np.ndarray:
    """Class probabilities (N, 7) for uint8 faces (N, 48, 48); with tta_flip, averaged with the mirrored faces."""
    if tta_flip:
        return predict_views(model, faces_u8, batch_size)["tta_flip"]
    return model.predict(to_model_input(faces_u8), batch_size=batch_size, verbose=0)


def predict_views(model: keras.Model, faces_u8: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Probabilities without ('plain') and with flip test-time augmentation ('tta_flip'), each face predicted once
    as it is and once mirrored."""
    return views(predict(model, faces_u8, batch_size), predict(model, faces_u8[:, :, ::-1], batch_size))


def views(plain: np.ndarray, mirrored: np.ndarray) -> dict[str, np.ndarray]:
    """{'plain': the faces' probabilities, 'tta_flip': their average with the mirrored faces' probabilities}."""
    return {"plain": plain, "tta_flip": (plain + mirrored) / 2}


def headline(label_ids: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The few numbers people compare: accuracy, macro-F1 and disgust recall (the rare class)."""
    scores = score(label_ids, probs.argmax(axis=1))
    return {"accuracy": scores.accuracy, "macro_f1": scores.macro_f1,
            "recall_disgust": scores.per_class["disgust"]["recall"], "images": int(len(label_ids))}


def variants(label_ids: np.ndarray, probs_by_view: dict[str, np.ndarray], unique: np.ndarray) -> dict[str, dict]:
    """Headline scores of each view (see views: without and with flip TTA), on all test faces and on those with
    no copy in the training data (unique: boolean mask)."""
    return {
        **{name: headline(label_ids, probs) for name, probs in probs_by_view.items()},
        **{f"unique_{name}": headline(label_ids[unique], probs[unique]) for name, probs in probs_by_view.items()},
    }


def flat_variants(variants: dict[str, dict]) -> dict[str, float]:
    """Variant scores named for MLflow: test_plain_accuracy, test_unique_tta_flip_macro_f1, ..."""
    return {f"test_{name}_{key}": value for name, row in variants.items() for key, value in row.items()
            if key != "images"}


def score(label_ids: np.ndarray, predicted_ids: np.ndarray) -> Scores:
    """All test metrics from true and predicted label ids."""
    classes = list(range(len(CLASS_NAMES)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        label_ids, predicted_ids, labels=classes, zero_division=0
    )
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(CLASS_NAMES, precision, recall, f1, support)
    }
    return Scores(
        accuracy=float(metrics.accuracy_score(label_ids, predicted_ids)),
        macro_f1=float(metrics.f1_score(label_ids, predicted_ids, labels=classes, average="macro", zero_division=0)),
        weighted_f1=float(
            metrics.f1_score(label_ids, predicted_ids, labels=classes, average="weighted", zero_division=0)
        ),
        per_class=per_class,
        confusion=metrics.confusion_matrix(label_ids, predicted_ids, labels=classes),
    )
