"""Keras 3 model builders, picked by model.name; runs on the TensorFlow and the JAX backend alike."""

from collections.abc import Callable

import keras
from keras import layers

from emotion.config import ModelConfig
from emotion.data.labels import NUM_CLASSES
from emotion.data.preprocess import IMG_SIZE, INPUT_SHAPE
from emotion.errors import ConfigError


def face_crop(x, cfg: ModelConfig):
    """The centre cfg.crop_px square of the face (all of it at 48). Part of the saved model, so that every inference
    path (Keras, ONNX, TFLite) crops as training did; the random windows of training come from crop_jitter."""
    if cfg.crop_px == IMG_SIZE:
        return x
    if not 32 <= cfg.crop_px < IMG_SIZE or not 0 <= 2 * cfg.crop_jitter_px <= IMG_SIZE - cfg.crop_px:
        raise ConfigError(f"model.crop_px={cfg.crop_px}, crop_jitter_px={cfg.crop_jitter_px}: crop_px must be 32 to "
                          f"{IMG_SIZE} and the jitter at most ({IMG_SIZE} - crop_px) / 2, so the window stays inside")
    margin = (IMG_SIZE - cfg.crop_px) // 2
    edges = (margin, IMG_SIZE - cfg.crop_px - margin)
    return layers.Cropping2D((edges, edges), name="face_crop")(x)  # slicing (CenterCrop: its ONNX export differed by 0.07)


def crop_jitter(cfg: ModelConfig) -> keras.Layer | None:
    """For training only, in front of the model: the face moved by up to cfg.crop_jitter_px either way, per face, so
    that the model's centre crop becomes a random window. Never saved: exported models would carry its random ops."""
    if not cfg.crop_jitter_px:
        return None
    shift = cfg.crop_jitter_px / IMG_SIZE
    return layers.RandomTranslation(shift, shift, fill_mode="nearest", name="crop_jitter")


def build_reference_model(cfg: ModelConfig) -> keras.Model:
    """Conv blocks (Conv + BatchNorm + ReLU + MaxPool + Dropout), global average pooling, an L2 dense head."""
    inputs = keras.Input(shape=INPUT_SHAPE)
    x = face_crop(inputs, cfg)
    for filters, rate in zip(cfg.filters, cfg.block_dropout):
        for _ in range(cfg.convs_per_block):
            x = layers.Conv2D(filters, cfg.kernel_size, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(rate)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = classifier_head(x, cfg)
    return keras.Model(inputs, outputs, name=cfg.name)


def classifier_head(x, cfg: ModelConfig):
    """Dense with L2 + BatchNorm + ReLU + Dropout, then a float32 softmax over the classes."""
    x = layers.Dense(cfg.dense_units, kernel_regularizer=keras.regularizers.L2(cfg.dense_l2))(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(cfg.dense_dropout)(x)
    # float32 softmax keeps probabilities exact under mixed precision
    return layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)


BUILDERS: dict[str, Callable[[ModelConfig], keras.Model]] = {
    "reference": build_reference_model,
}


def build_model(cfg: ModelConfig) -> keras.Model:
    """Build the architecture named by cfg.name."""
    try:
        builder = BUILDERS[cfg.name]
    except KeyError:
        raise ConfigError(f"model.name={cfg.name!r} is unknown; choose one of {', '.join(BUILDERS)}") from None
    return builder(cfg)
