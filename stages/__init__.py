"""Thin entry points of the DVC pipeline (index, train, evaluate) and of run export/import."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up banner is noise on a user's console
