"""Do the probabilities mean what they say? Expected calibration error, the reliability table behind it, and
temperature scaling (Guo et al. 2017): one temperature T fitted on the validation split, softmax(logits / T).
Optionally (train.class_bias) per-class offsets b to the scaled logits, softmax(logits / T + b), fitted on the same
faces for macro-F1: the classes a model under-predicts (fear, sad) gain recall where others lose little.

Both are baked into the model's last layer (its kernel and bias divided by T, b added to the bias), so every inference
path (Keras, ONNX, TFLite, int8) returns calibrated probabilities without knowing of it; calibration.json beside the
model files records T, b (class_bias_<class>) and the scores before and after. The temperature alone changes no
predicted class; the offsets do.
"""

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from emotion.data.labels import CLASS_NAMES
from emotion.data.preprocess import to_model_input

log = logging.getLogger(__name__)

BINS = 15  # equal-width confidence bins, as in Guo et al.
TEMPERATURES = np.geomspace(0.25, 4.0, 401)  # the search grid: steps of 0.7 %
# each class's offset is searched in steps of 0.05, the smallest first (of equal scores the first wins) ...
OFFSETS = sorted(np.linspace(-1.0, 1.0, 41).round(2), key=abs)
OFFSET_ROUNDS = 3  # ... one class after the other, this many times over


def reliability(probs: np.ndarray, label_ids: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """Per confidence bin (top-class probability): faces, mean confidence and accuracy; empty bins left out."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == label_ids
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    table = pd.DataFrame({"bin": which, "confidence": confidence, "accuracy": correct.astype(float)})
    rows = table.groupby("bin").agg(faces=("bin", "size"), confidence=("confidence", "mean"),
                                    accuracy=("accuracy", "mean"))
    rows["low"], rows["high"] = rows.index / bins, (rows.index + 1) / bins
    return rows.reset_index(drop=True)[["low", "high", "faces", "confidence", "accuracy"]]


def expected_calibration_error(probs: np.ndarray, label_ids: np.ndarray, bins: int = BINS) -> float:
    """The faces-weighted mean gap between confidence and accuracy over the bins (0: calibrated)."""
    table = reliability(probs, label_ids, bins)
    return float((table["faces"] * (table["confidence"] - table["accuracy"]).abs()).sum() / len(label_ids))


def with_temperature(probs: np.ndarray, temperature: float, bias: np.ndarray | None = None) -> np.ndarray:
    """The probabilities a softmax with temperature T (and offsets b) would have given: softmax(log(p) / T + b)."""
    scaled = np.log(np.clip(probs, 1e-12, 1.0)) / temperature + (0.0 if bias is None else bias)
    scaled = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def without(probs: np.ndarray, temperature: float, bias: np.ndarray | None = None) -> np.ndarray:
    """A calibrated model's probabilities with T and b taken back out: softmax(T (log(p) - b))."""
    return with_temperature(probs, 1 / temperature, None if bias is None else -temperature * bias)


def macro_f1(scores: np.ndarray, label_ids: np.ndarray) -> float:
    """The macro-F1 of the predictions argmax(scores): probabilities, their logarithms or logits alike."""
    return float(f1_score(label_ids, scores.argmax(axis=1), labels=range(len(CLASS_NAMES)), average="macro",
                          zero_division=0))


def fit_class_bias(probs: np.ndarray, label_ids: np.ndarray) -> np.ndarray:
    """Per-class offsets to log(p) that maximise the macro-F1 on these faces (coordinate search on OFFSETS)."""
    log_probs, bias = np.log(np.clip(probs, 1e-12, 1.0)), np.zeros(probs.shape[1])
    for _ in range(OFFSET_ROUNDS):
        for k in range(len(bias)):  # the softmax changes no argmax: log(p) + b decides
            tried = [macro_f1(log_probs + np.r_[bias[:k], offset, bias[k + 1:]], label_ids) for offset in OFFSETS]
            bias[k] = OFFSETS[int(np.argmax(tried))]  # the first best: the smallest, 0 where nothing is gained
    return bias


def log_loss(probs: np.ndarray, label_ids: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(label_ids)), label_ids], 1e-12, 1.0)).mean())


def fit_temperature(probs: np.ndarray, label_ids: np.ndarray) -> float:
    """The temperature that minimises the log loss of the probabilities on these faces."""
    losses = [log_loss(with_temperature(probs, t), label_ids) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def summary(probs: np.ndarray, label_ids: np.ndarray, temperature: float, prefix: str,
            bias: np.ndarray | None = None) -> dict[str, float]:
    """ECE and log loss before and after the calibration (and with offsets, the macro-F1), named for MLflow (e.g.
    val_ece, val_ece_calibrated)."""
    after = with_temperature(probs, temperature, bias)
    scores = {f"{prefix}_ece": expected_calibration_error(probs, label_ids),
              f"{prefix}_ece_calibrated": expected_calibration_error(after, label_ids),
              f"{prefix}_log_loss": log_loss(probs, label_ids),
              f"{prefix}_log_loss_calibrated": log_loss(after, label_ids)}
    if bias is not None:
        scores |= {f"{prefix}_macro_f1_uncalibrated": macro_f1(probs, label_ids),  # not test_macro_f1: the headline's
                   f"{prefix}_macro_f1_calibrated": macro_f1(after, label_ids)}
    return scores


def test_scores(probs: np.ndarray, label_ids: np.ndarray, temperature: float,
                bias: np.ndarray | None = None) -> dict[str, float]:
    """The model's temperature and, on these (test) faces, ECE and log loss of its probabilities without its
    calibration (see without) and as it gives them."""
    return {"temperature": temperature, **summary(without(probs, temperature, bias), label_ids, temperature, "test",
                                                  bias)}


def calibrate(model, faces_u8: np.ndarray, label_ids: np.ndarray, class_bias: bool = False) -> dict:
    """Fit the temperature (and with class_bias the offsets) on these (validation) faces, bake them into the model,
    and return what calibration.json records: T, the offsets (class_bias_<class>) and the scores before and after."""
    probs = model.predict(to_model_input(faces_u8), batch_size=256, verbose=0)
    temperature = fit_temperature(probs, label_ids)
    bias = fit_class_bias(with_temperature(probs, temperature), label_ids) if class_bias else None
    bake(model, temperature, bias)
    scores = summary(probs, label_ids, temperature, "val", bias)
    log.info("temperature %.3f fitted on %d validation faces: ECE %.4f -> %.4f", temperature, len(label_ids),
             scores["val_ece"], scores["val_ece_calibrated"])
    if bias is not None:
        log.info("class offsets %s: validation macro-F1 %.4f -> %.4f", dict(zip(CLASS_NAMES, bias.round(2))),
                 scores["val_macro_f1_uncalibrated"], scores["val_macro_f1_calibrated"])
    offsets = {} if bias is None else {f"class_bias_{name}": float(b) for name, b in zip(CLASS_NAMES, bias)}
    return {key: round(value, 4) for key, value in ({"temperature": temperature} | offsets | scores).items()}


def bake(model, temperature: float, bias: np.ndarray | None = None) -> None:
    """Divide the last layer's kernel and bias by T (and add the offsets to its bias), so that its softmax gives the
    calibrated probabilities."""
    head = model.layers[-1]
    if getattr(head.activation, "__name__", "") != "softmax" or len(head.get_weights()) != 2:
        raise ValueError(f"the model ends in {type(head).__name__}, not a Dense softmax: no temperature to bake")
    kernel, offset = (weight / temperature for weight in head.get_weights())
    head.set_weights([kernel, offset if bias is None else offset + bias.astype(offset.dtype)])


def unbake(model, temperature: float, bias: np.ndarray | None = None) -> None:
    """Take a baked T and b back out of the last layer (as `without` does to probabilities): its raw logits again."""
    bake(model, 1 / temperature, None if bias is None else -temperature * bias)
