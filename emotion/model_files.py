"""The file names of a model folder and of an exported run: one place, importable without Keras."""

ARCHITECTURE = "model.json"
WEIGHTS = "model.weights.h5"
ONNX = "model.onnx"  # made from the two above by emotion.inference.backends.export_onnx
INT8 = "model.int8.onnx"  # made by realtime.quantize; shipped with a model when its accuracy was checked
EXPECTED = "expected_predictions.json"  # the model's outputs on probe_faces(), to catch a broken file
# the rest of an exported run or shipped model folder (see run_export, offline)
PARAMS, HISTORY, METRICS, TAGS, CARD = "params.yaml", "history.csv", "metrics.json", "tags.json", "README.md"
CURVES, CONFUSION = "training_curves.png", "confusion_matrix.png"
