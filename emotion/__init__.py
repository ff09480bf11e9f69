"""Facial emotion recognition on FER2013: the library behind the pipeline stages and the realtime tools.

The Python API: `from emotion import EmotionRecognizer` (see emotion.inference.recognizer).
"""

from emotion.inference.recognizer import EmotionRecognizer

__all__ = ["EmotionRecognizer"]
