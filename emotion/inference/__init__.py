"""What every application needs to label faces, importable without TensorFlow or Keras: face boxes (faces: BlazeFace,
decoded in blazeface, or Haar), inference backends (backends: ONNX Runtime, int8 ONNX, Keras), frames to records
(recognizer), and where a model comes from (models: run id, registry URI, folder, local cache)."""
