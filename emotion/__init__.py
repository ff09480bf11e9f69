"""Facial emotion recognition on FER2013: the library behind the pipeline stages and the realtime tools.

The Python API: `from emotion import EmotionRecognizer` (see emotion.inference.recognizer).
"""

from emotion import tensorflow_logs

tensorflow_logs.install()  # before anything here can import TensorFlow

from emotion.inference.recognizer import EmotionRecognizer  # noqa: E402 - after the quieting

__all__ = ["EmotionRecognizer"]
