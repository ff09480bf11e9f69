"""Realtime emotion labelling of faces in a webcam stream, a video or an image."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up banner is noise on a user's console
