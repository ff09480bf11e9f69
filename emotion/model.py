"""Keras 3 model builders, picked by model.name; runs on the TensorFlow and the JAX backend alike."""

from collections.abc import Callable

import keras
from keras import layers

from emotion.config import ModelConfig
from emotion.errors import ConfigError
from emotion.labels import NUM_CLASSES
from emotion.preprocess import INPUT_SHAPE


def build_reference_model(cfg: ModelConfig) -> keras.Model:
    """Conv blocks (Conv + BatchNorm + ReLU + MaxPool + Dropout), global average pooling, an L2 dense head."""
    x = inputs = keras.Input(shape=INPUT_SHAPE)
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
