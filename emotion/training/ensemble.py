"""An ensemble of trained models as one Keras model: each member sees the face, their probabilities are averaged.

Saved as an ordinary model folder (model.json + model.weights.h5, standard layers only), so everything that takes
a model folder takes it: the evaluate stage scores it, distillation learns from it (distill.teacher_dir), the
inference paths and the int8 conversions run it.
"""

from pathlib import Path

import keras

from emotion.data.preprocess import INPUT_SHAPE
from emotion.errors import ConfigError
from emotion.inference import views
from emotion.tracking.model_io import load_model_files


def average(models: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the members' probabilities."""
    if len(models) < 2:
        raise ConfigError(f"an ensemble needs two or more models, got {len(models)}")
    face = keras.Input(INPUT_SHAPE, name="face")
    outputs = [keras.Model(model.inputs[0], model.outputs[0], name=f"member_{i}")(face)  # unique names inside
               for i, model in enumerate(models)]
    return keras.Model(face, keras.layers.Average(name="mean")(outputs), name="ensemble")


def average_of_folders(folders: list[str | Path]) -> keras.Model:
    """The ensemble of the model folders' models."""
    return average([load_model_files(folder) for folder in folders])


def members_test_time(folders: list[str | Path]) -> views.TestTime:
    """The views every member runs, which the ensemble runs as a whole: theirs when they agree; when they differ, flip
    if each member mirrors its faces (flip, or crops, whose windows include the mirror image), else plain."""
    own = {views.read(folder) for folder in folders}
    if len(own) == 1:
        return own.pop()
    return views.TestTime("flip") if all(test_time.scheme != "plain" for test_time in own) else views.TestTime()
