"""Do the probabilities mean what they say? Expected calibration error, the reliability table behind it, and
temperature scaling (Guo et al. 2017): one temperature T fitted on the validation split, softmax(logits / T).

The temperature is baked into the model's last layer (its kernel and bias divided by T), so every inference path
(Keras, ONNX, TFLite, int8) returns calibrated probabilities without knowing of it; calibration.json beside the
model files records T and the scores before and after. Predicted classes do not change.
"""

import logging

import numpy as np
import pandas as pd

from emotion.data.preprocess import to_model_input

log = logging.getLogger(__name__)

BINS = 15  # equal-width confidence bins, as in Guo et al.
TEMPERATURES = np.geomspace(0.25, 4.0, 401)  # the search grid: steps of 0.7 %


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


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities a softmax with temperature T would have given: softmax(log(p) / T)."""
    scaled = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    scaled = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def log_loss(probs: np.ndarray, label_ids: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(label_ids)), label_ids], 1e-12, 1.0)).mean())


def fit_temperature(probs: np.ndarray, label_ids: np.ndarray) -> float:
    """The temperature that minimises the log loss of the probabilities on these faces."""
    losses = [log_loss(with_temperature(probs, t), label_ids) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def summary(probs: np.ndarray, label_ids: np.ndarray, temperature: float, prefix: str) -> dict[str, float]:
    """ECE and log loss before and after the temperature, named for MLflow (e.g. val_ece, val_ece_calibrated)."""
    after = with_temperature(probs, temperature)
    return {f"{prefix}_ece": expected_calibration_error(probs, label_ids),
            f"{prefix}_ece_calibrated": expected_calibration_error(after, label_ids),
            f"{prefix}_log_loss": log_loss(probs, label_ids),
            f"{prefix}_log_loss_calibrated": log_loss(after, label_ids)}


def test_scores(probs: np.ndarray, label_ids: np.ndarray, temperature: float) -> dict[str, float]:
    """The model's temperature and, on these (test) faces, ECE and log loss of its probabilities without the
    temperature (softmax(T log p): the same probabilities with T taken back out) and as it gives them."""
    uncalibrated = with_temperature(probs, 1 / temperature)
    return {"temperature": temperature, **summary(uncalibrated, label_ids, temperature, "test")}


def calibrate(model, faces_u8: np.ndarray, label_ids: np.ndarray) -> dict:
    """Fit the temperature on these (validation) faces, bake it into the model, and return what calibration.json
    records: the temperature and the scores on these faces before and after."""
    probs = model.predict(to_model_input(faces_u8), batch_size=256, verbose=0)
    temperature = fit_temperature(probs, label_ids)
    bake_temperature(model, temperature)
    scores = summary(probs, label_ids, temperature, "val")
    log.info("temperature %.3f fitted on %d validation faces: ECE %.4f -> %.4f", temperature, len(label_ids),
             scores["val_ece"], scores["val_ece_calibrated"])
    return {"temperature": round(temperature, 4), **{key: round(value, 4) for key, value in scores.items()}}


def bake_temperature(model, temperature: float) -> None:
    """Divide the last layer's kernel and bias by T, so that its softmax gives the calibrated probabilities."""
    head = model.layers[-1]
    if getattr(head.activation, "__name__", "") != "softmax" or len(head.get_weights()) != 2:
        raise ValueError(f"the model ends in {type(head).__name__}, not a Dense softmax: no temperature to bake")
    head.set_weights([weight / temperature for weight in head.get_weights()])
