"""The reference architecture, exactly, and its JSON + weights round trip."""

import keras
import numpy as np
import pytest

from conftest import compose_config
from emotion.errors import ConfigError, ModelNotFound
from emotion.inference.backends import export_onnx
from emotion.tracking import model_io
from emotion.training import trainer
from emotion.training.model import build_model


@pytest.fixture(scope="module")
def reference():
    return build_model(compose_config().model)


def test_reference_blocks_are_conv_bn_relu_pool_dropout(reference):
    kinds = [type(layer).__name__ for layer in reference.layers[1:]]
    block = ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Dropout"]
    head = ["GlobalAveragePooling2D", "Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    assert kinds == block * 4 + head
    convs = [layer for layer in reference.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [(f, (3, 3), "same") for f in (64, 128, 256, 512)]
    drops = [layer.rate for layer in reference.layers if isinstance(layer, keras.layers.Dropout)]
    assert drops == [0.3, 0.3, 0.4, 0.4, 0.5]
    dense, out = [layer for layer in reference.layers if isinstance(layer, keras.layers.Dense)]
    assert dense.units == 512 and isinstance(dense.kernel_regularizer, keras.regularizers.L2)
    assert out.units == 7 and out.activation.__name__ == "softmax"
    assert reference.input_shape == (None, 48, 48, 1) and reference.output_shape == (None, 7)


def test_json_and_weights_reload_to_identical_predictions(reference, tmp_path):
    x = np.random.default_rng(0).random((5, 48, 48, 1), dtype=np.float32)
    model_io.save_model_files(reference, tmp_path / "m")
    again = model_io.load_model_files(tmp_path / "m")
    np.testing.assert_array_equal(reference.predict(x, verbose=0), again.predict(x, verbose=0))


def test_missing_model_files_are_named(tmp_path):
    with pytest.raises(ModelNotFound, match="missing model.json and model.weights.h5"):
        model_io.load_model_files(tmp_path)


def test_unknown_model_name_fails():
    with pytest.raises(ConfigError, match="model.name='resnet9000' is unknown; choose one of reference"):
        build_model(compose_config("model.name=resnet9000").model)


def test_a_cropping_model_sees_the_centre_and_trains_on_random_windows(tmp_path):
    cfg = compose_config("model.crop_px=44", "model.crop_jitter_px=2")
    model = build_model(cfg.model)
    crop = keras.Model(model.input, model.get_layer("face_crop").output)
    x = np.random.default_rng(0).random((16, 48, 48, 1), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(crop(x, training=True)), x[:, 2:46, 2:46])  # no randomness saved
    wrapper = trainer.compile_model(cfg.model, cfg.train)  # training puts the jitter in front
    assert trainer.saved_part(wrapper).name == model.name and wrapper.input_shape == model.input_shape
    moved = np.asarray(wrapper.get_layer("crop_jitter")(x, training=True))[:, 2:46, 2:46]
    assert (np.abs(moved - x[:, 2:46, 2:46]).max(axis=(1, 2, 3)) > 0.01).sum() > 8
    folder = model_io.save_model_files(model, tmp_path / "m")  # standard layers: the safe JSON reload keeps them
    again = model_io.load_model_files(folder)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert export_onnx(again, folder).exists()  # checked against Keras: the crop exports


@pytest.mark.parametrize("crop, jitter", [(44, 3), (30, 0), (49, 0)])
def test_a_crop_window_that_leaves_the_face_is_refused(crop, jitter):
    with pytest.raises(ConfigError, match="crop_px"):
        build_model(compose_config(f"model.crop_px={crop}", f"model.crop_jitter_px={jitter}").model)
