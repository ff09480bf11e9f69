"""Augmentation of [0, 1] faces by Keras preprocessing layers, for the compiled training step (see
trainer.training_wrapper)."""

import keras

from emotion.config import AugmentConfig


def augmenter(cfg: AugmentConfig) -> keras.Sequential | None:
    """Keras preprocessing layers for cfg's augmentations of [0, 1] faces (N, 48, 48, 1), or None for none; they
    run in float32 whatever the precision, and draw from the model's seeded random streams (see reseed).

    Geometry first (flip, shift, zoom, rotation: where and how big the detector's box lands), then photometry
    (brightness, contrast, blur, noise: the camera), then erasing (occlusion). Mixup mixes labels too, so it
    happens where the labels are (Batches).
    """
    unit, f32 = (0.0, 1.0), {"dtype": "float32"}
    steps = [keras.layers.RandomFlip("horizontal", **f32)] if cfg.flip else []
    if cfg.shift_fraction:
        steps.append(keras.layers.RandomTranslation(cfg.shift_fraction, cfg.shift_fraction, "reflect", **f32))
    if cfg.zoom_fraction:
        steps.append(keras.layers.RandomZoom(cfg.zoom_fraction, fill_mode="reflect", **f32))
    if cfg.rotation_deg:
        steps.append(keras.layers.RandomRotation(cfg.rotation_deg / 360, "reflect", **f32))
    if cfg.brightness:
        steps.append(keras.layers.RandomBrightness(cfg.brightness, value_range=unit, **f32))
    if cfg.contrast:
        steps.append(keras.layers.RandomContrast(cfg.contrast, value_range=unit, **f32))
    if cfg.blur_probability:
        steps.append(keras.layers.RandomGaussianBlur(cfg.blur_probability, kernel_size=3, sigma=(0.1, 1.2),
                                                     value_range=unit, **f32))
    if cfg.noise_stddev:
        steps.append(keras.layers.GaussianNoise(cfg.noise_stddev, **f32))
    if cfg.erasing_probability:
        steps.append(keras.layers.RandomErasing(cfg.erasing_probability, scale=(0.02, 0.2), fill_value=0.5,
                                                value_range=unit, **f32))
    return keras.Sequential(steps, name="augment") if steps else None
