"""Score a model on held-out faces: accuracy, macro/weighted F1, per-class precision/recall/F1, confusion matrix."""

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from sklearn import metrics

from emotion.data.labels import CLASS_NAMES
from emotion.data.preprocess import to_model_input
from emotion.inference.backends import INT8_BACKENDS, load_backend
from emotion.inference.views import VARIANTS, TestTime


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


def predict(model: keras.Model, faces_u8: np.ndarray, batch_size: int = 256,
            test_time: TestTime = TestTime()) -> np.ndarray:
    """Class probabilities (N, 7) for uint8 faces (N, 48, 48), averaged over the test-time views."""
    return test_time.predict(lambda faces: model.predict(to_model_input(faces), batch_size=batch_size, verbose=0),
                             faces_u8)


def predict_views(model: keras.Model, faces_u8: np.ndarray, batch_size: int = 256,
                  shift_px: int = 0) -> dict[str, np.ndarray]:
    """Probabilities under every test-time scheme the model can run (see by_scheme), each view predicted once;
    crops when it crops its input (shift_px > 0)."""
    widest = TestTime("crops", shift_px) if shift_px else TestTime("flip")
    return by_scheme(np.stack([predict(model, view, batch_size) for view in widest.views(faces_u8)]))


def int8_accuracies(folder: str | Path, faces_u8: np.ndarray, label_ids: np.ndarray) -> dict[str, float]:
    """Test accuracy of each int8 model the folder holds (test_accuracy_onnx_int8, ...), with the model's own views,
    as the inference backends run them: `auto` picks an int8 model when there is one."""
    return {f"test_accuracy_{name.replace('-', '_')}": float(np.mean(
                load_backend(folder, name).predict(faces_u8).argmax(axis=1) == label_ids))
            for name, (file, _) in INT8_BACKENDS.items() if (Path(folder) / file).exists()}


def by_scheme(per_view: np.ndarray) -> dict[str, np.ndarray]:
    """{'plain', 'tta_flip' and, from more than two views, 'tta_crops'} probabilities (N, 7) from those of each view
    (V, N, 7), in TestTime.views' order: the faces' windows (the face as it is first), then their mirror images'."""
    half = len(per_view) // 2
    schemes = {VARIANTS["plain"]: per_view[0], VARIANTS["flip"]: (per_view[0] + per_view[half]) / 2}
    return schemes | ({VARIANTS["crops"]: per_view.mean(axis=0)} if half > 1 else {})


def headline(label_ids: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The few numbers people compare: accuracy, macro-F1 and disgust recall (the rare class)."""
    scores = score(label_ids, probs.argmax(axis=1))
    return {"accuracy": scores.accuracy, "macro_f1": scores.macro_f1,
            "recall_disgust": scores.per_class["disgust"]["recall"], "images": int(len(label_ids))}


def variants(label_ids: np.ndarray, probs_by_view: dict[str, np.ndarray], unique: np.ndarray) -> dict[str, dict]:
    """Headline scores of each test-time scheme (see by_scheme), on all test faces and on those with no copy in the
    training data (unique: boolean mask)."""
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
