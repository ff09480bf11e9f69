"""Where a fit runs (train.distribution): this process's devices, or every device of several processes or GPUs.

data_parallel (JAX backend) replicates the model on every device of every process (keras.distribution.DataParallel)
and splits each global batch of train.batch_size rows over them; processes agree on the coordinator (process 0's
host:port), their number and their own id through train.coordinator_address / num_processes / process_id, or,
where those are null, the environment: KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES / _PROCESS_ID, or
MASTER_ADDR + MASTER_PORT / WORLD_SIZE / RANK as torchrun and Kubernetes training operators set them.
mirrored (TensorFlow backend) does the same over the GPUs of one machine (tf.distribute.MirroredStrategy).
"""

import contextlib
import functools
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ContextManager

import keras
import numpy as np

from emotion.config import TrainConfig
from emotion.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = {"data_parallel": "jax", "mirrored": "tensorflow"}  # the Keras backend each distribution runs on


@dataclass(frozen=True)
class Cluster:
    """This process among num_processes, the num_devices a global batch is split over, and the Keras distribution
    (JAX) or TensorFlow strategy whose scope places the model's variables and batches on them."""

    process_id: int = 0
    num_processes: int = 1
    num_devices: int = 1
    distribution: Any = None  # keras.distribution.DataParallel or tf.distribute.MirroredStrategy
    shards_batches: bool = False  # each process feeds its own rows of a batch (JAX); TensorFlow splits batches itself

    def scope(self) -> ContextManager:
        """Where the model is built and fitted."""
        return self.distribution.scope() if self.distribution else contextlib.nullcontext()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """For what process 0 does by itself inside the scope (saving a checkpoint): variables Keras creates there
        stay on this process; on every process's devices they would wait for the others."""
        if not self.shards_batches:
            yield
            return
        keras.distribution.set_distribution(None)
        try:
            yield
        finally:
            keras.distribution.set_distribution(self.distribution)

    @property
    def is_chief(self) -> bool:
        """Process 0 tracks the run and writes checkpoints and outputs; the others train in step with it."""
        return self.process_id == 0

    def broadcast(self, value: int) -> int:
        """Process 0's value, on every process; a point every process reaches before any goes on."""
        if self.num_processes == 1:
            return value
        from jax.experimental import multihost_utils

        return int(multihost_utils.broadcast_one_to_all(np.int64(value)))

    def batch_count(self, rows: int, batch_size: int) -> int:
        """Batches per epoch: an epoch's last batch is left out if it is shorter than the device count."""
        count = -(-rows // batch_size)
        return count - int(self.shards_batches and 0 < rows % batch_size < self.num_devices)

    def local_part(self, batch: tuple) -> tuple:
        """This process's rows of a global batch: cut to a multiple of the device count (only an epoch's last
        batch can lose rows), then process p of n takes the p-th of n equal parts. Whole where not shards_batches."""
        if not self.shards_batches:
            return batch
        rows = len(batch[0]) // self.num_devices * self.num_devices // self.num_processes
        return tuple(part[self.process_id * rows : (self.process_id + 1) * rows] for part in batch)


LOCAL = Cluster()


def connect(cfg: TrainConfig, env: Mapping[str, str] = os.environ) -> Cluster:
    """The cluster cfg.distribution asks for, joining the other processes first if there are several."""
    if cfg.distribution == "none":
        return LOCAL
    backend = keras.backend.backend()
    if backend != BACKENDS[cfg.distribution]:
        raise ConfigError(
            f"train.distribution={cfg.distribution} runs on the {BACKENDS[cfg.distribution]} backend but Keras uses "
            f"{backend}: set KERAS_BACKEND={BACKENDS[cfg.distribution]}"
            + (" (or train.distribution=mirrored for the GPUs of one machine)" if backend == "tensorflow" else "")
        )
    cluster = _data_parallel(*process_settings(cfg, env)) if cfg.distribution == "data_parallel" else _mirrored()
    if cfg.batch_size % cluster.num_devices:
        raise ConfigError(f"train.batch_size={cfg.batch_size} is split over {cluster.num_devices} devices: make it a "
                          "multiple of that (it is the global batch)")
    log.info("%s: process %d of %d, global batch %d over %d devices", cfg.distribution, cluster.process_id,
             cluster.num_processes, cfg.batch_size, cluster.num_devices)
    return cluster


def process_settings(cfg: TrainConfig, env: Mapping[str, str] = os.environ) -> tuple[str | None, int, int]:
    """(coordinator address, number of processes, this process's id) from cfg, or the environment where null."""
    address = cfg.coordinator_address or env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or (
        f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}" if {"MASTER_ADDR", "MASTER_PORT"} <= env.keys() else None)
    processes = cfg.num_processes or _env_int(env, "KERAS_DISTRIBUTION_NUM_PROCESSES", "WORLD_SIZE") or 1
    process_id = cfg.process_id if cfg.process_id is not None else _env_int(
        env, "KERAS_DISTRIBUTION_PROCESS_ID", "RANK")
    if processes > 1 and (address is None or process_id is None):
        raise ConfigError(
            f"train.distribution=data_parallel over {processes} processes needs process 0's host:port and this "
            "process's id: set train.coordinator_address and train.process_id (or KERAS_DISTRIBUTION_JOB_ADDRESSES "
            "and KERAS_DISTRIBUTION_PROCESS_ID)"
        )
    if processes > 1 and not 0 <= process_id < processes:
        raise ConfigError(f"process id {process_id} out of range for {processes} processes: use 0 to {processes - 1}")
    return address, processes, process_id if processes > 1 else 0  # one process is process 0, whatever RANK says


def _env_int(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        if env.get(name, "").strip():
            try:
                return int(env[name])
            except ValueError:
                raise ConfigError(f"{name}={env[name]!r}: must be a whole number") from None
    return None


def _data_parallel(address: str | None, processes: int, process_id: int) -> Cluster:
    if processes > 1:
        _join(address, processes, process_id)
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)  # Batches shard
    return Cluster(process_id, processes, len(devices), distribution, shards_batches=True)


@functools.cache  # JAX joins a cluster once per process
def _join(address: str, processes: int, process_id: int) -> None:
    log.info("joining %s as process %d of %d", address, process_id, processes)
    keras.distribution.initialize(address, processes, process_id)


def _mirrored() -> Cluster:
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy()
    return Cluster(num_devices=strategy.num_replicas_in_sync, distribution=strategy)
