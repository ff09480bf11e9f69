"""The optimizer and its learning rate per epoch (step or cosine with warm-up)."""

import keras
import numpy as np

from emotion.config import TrainConfig


def lr_schedule(cfg: TrainConfig):
    """Learning rate per 0-based epoch.

    step: cfg.lr, then lr_drop_values[i] once lr_drop_epochs[i] epochs are done.
    cosine: cfg.lr decaying along a half cosine towards 0 at the last epoch, after warmup_epochs of linear warm-up.
    """

    def step(epoch: int, lr: float = 0.0) -> float:
        rate = cfg.lr
        for drop_epoch, value in zip(cfg.lr_drop_epochs, cfg.lr_drop_values):
            if epoch >= drop_epoch:
                rate = value
        return rate

    def cosine(epoch: int, lr: float = 0.0) -> float:
        if epoch < cfg.warmup_epochs:
            return cfg.lr * (epoch + 1) / cfg.warmup_epochs
        done = (epoch - cfg.warmup_epochs) / (cfg.epochs - cfg.warmup_epochs)
        return float(cfg.lr * 0.5 * (1 + np.cos(np.pi * done)))

    return {"step": step, "cosine": cosine}[cfg.schedule]


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam, or SGD with Nesterov momentum; decoupled weight decay when cfg.weight_decay > 0; with cfg.ema, a moving
    average of the weights that replaces them when the fit ends."""
    options = {"weight_decay": cfg.weight_decay or None, "use_ema": cfg.ema, "ema_momentum": cfg.ema_momentum}
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(cfg.lr, momentum=cfg.momentum, nesterov=True, **options)
    return keras.optimizers.Adam(cfg.lr, **options)
