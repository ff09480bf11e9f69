"""Training: Keras 3 model builders, the fit (augmentation, schedules, distillation, distribution), the
training run's checkpoints, lock and resume, ensembles, sweeps, tracked and offline runs."""
