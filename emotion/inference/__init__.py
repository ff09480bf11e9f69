"""What every application needs to label faces, importable without TensorFlow or Keras: face boxes (faces: BlazeFace,
decoded in blazeface, or Haar), inference backends (backends: int8 TFLite on LiteRT, ONNX Runtime float and int8,
Keras; litert: the LiteRT interpreter both TFLite models use), frames to records (recognizer), and where a model
comes from (models: run id, registry URI, folder, local cache)."""
