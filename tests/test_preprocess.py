"""The label order and the face preprocessing that training and realtime share."""

import numpy as np

from emotion.data.labels import CLASS_IDS, CLASS_NAMES, CSV_EMOTION_NAMES
from emotion.data.preprocess import INPUT_SHAPE, crop_face, to_model_input


def test_one_label_order():
    assert CLASS_NAMES == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert all(CLASS_NAMES[CLASS_IDS[name]] == name for name in CLASS_NAMES)
    assert sorted(CSV_EMOTION_NAMES.values()) == sorted(CLASS_NAMES) and CSV_EMOTION_NAMES[6] == "neutral"


def test_model_input_is_float_in_unit_range_with_a_channel_axis():
    faces = np.array([np.zeros((48, 48)), np.full((48, 48), 255)], np.uint8)
    x = to_model_input(faces)
    assert x.shape == (2, *INPUT_SHAPE) and x.dtype == np.float32
    assert x[0].max() == 0.0 and x[1].min() == 1.0


def test_crop_face_cuts_the_box_and_resizes_to_48():
    frame = np.zeros((200, 300), np.uint8)
    frame[50:150, 100:200] = 255
    face = crop_face(frame, (100, 50, 100, 100))
    assert face.shape == (48, 48) and face.dtype == np.uint8 and face.min() == 255
    assert crop_face(frame, (-10, -10, 40, 40)).shape == (48, 48)  # boxes reaching past the edge still give a face
