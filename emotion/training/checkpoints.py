"""A training's checkpoint folder: settings fingerprint, lock, exact resume, clean-up, and the tags of its run.

Shared by the tracked (training.tracked) and offline (training.offline) paths. The folder holds the newest epoch checkpoint
(weights with the optimizer state), and state.json: the fingerprint, the MLflow run id (tracked path), the epochs
done and their logged metrics. Files are replaced atomically, so a process killed at any point leaves the previous
complete checkpoint. A lock makes one process at a time own the folder; the OS releases it when the process dies.
Under data parallelism process 0 owns it and the other processes read it (CheckpointReader): a shared filesystem.
"""

import hashlib
import json
import logging
import os
import platform
import shutil
import signal
import threading
from pathlib import Path

import keras
import pandas as pd
from filelock import FileLock, Timeout

from emotion import config
from emotion.config import Config
from emotion.data import dataset
from emotion.errors import CheckpointInUse, CheckpointUnreadable, TrainingInterrupted, UserError
from emotion.jsonfiles import read_json, write_json
from emotion.tracking import provenance
from emotion.training.distributed import LOCAL, Cluster

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
LOCK_FILE = "train.lock"
OWNER_FILE = "owner.json"  # who holds the lock, for the refusal message
WEIGHTS_PATTERN = "epoch-{:04d}.weights.h5"


def fingerprint(settings: dict) -> str:
    """Stable hash of everything that must match for a checkpoint to be resumed (config and data)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


TRAINING_SECTIONS = ("seed", "data", "model", "augment", "train", "distill")  # what shapes the trained weights
# where training runs, not what it trains (the global batch is the same): a run may resume on other devices
PLACEMENT_KEYS = ("train.resume", "train.distribution", "train.coordinator_address", "train.num_processes",
                  "train.process_id")


def settings_of(cfg: Config, data_hash: str) -> dict:
    """What must match for a checkpoint to be resumed: the config sections that shape training (less train.resume
    and where it runs; evaluation, tracking and the applications' settings may change meanwhile) and the data."""
    flat = config.flatten(config.to_dict(cfg))
    kept = {k: v for k, v in flat.items() if k.split(".")[0] in TRAINING_SECTIONS and k not in PLACEMENT_KEYS}
    return kept | {"data": data_hash}


def logged_config(cfg: Config) -> dict:
    """The config as a run records it (nested): data.source is the source the index was actually read from."""
    tree = config.to_dict(cfg)
    tree["data"]["source"] = dataset.indexed_source(cfg.data.index_dir, cfg.data.source)
    return tree


def provenance_tags(data_hash: str) -> dict[str, str]:
    """Tags recorded with every run: the data, the code version, the backend and the machine."""
    return {
        "data_manifest_sha256": data_hash,
        "git_commit": provenance.git_commit(),
        "keras_backend": keras.backend.backend(),
        "trained_on": platform.node(),
    }


class CheckpointFolder:
    """A checkpoint folder owned by this process for the duration of `with CheckpointFolder(...) as checkpoint:`.

    On entry it takes the lock and loads the previous state when its fingerprint matches (and resume is true);
    otherwise the old checkpoint is removed and `abandoned_run_id` names the run it belonged to; then it tells the
    cluster's other processes the epochs done (see CheckpointReader). Ctrl-C inside the block becomes
    TrainingInterrupted, and any user-facing error gets the resume hint appended.
    """

    def __init__(self, checkpoint_dir: str | Path, settings: dict, resume: bool = True, cluster: Cluster = LOCAL):
        self.dir = Path(checkpoint_dir)
        self.fingerprint = fingerprint(settings)
        self.resume = resume
        self.cluster = cluster
        self.state = self._fresh_state()
        self.abandoned_run_id: str | None = None
        self._lock = FileLock(self.dir / LOCK_FILE)
        self.ctrl_c = _CtrlC()

    def __enter__(self) -> "CheckpointFolder":
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise CheckpointInUse(
                f"{self.dir} is in use by {self._owner()}: wait for that training to end, or give this one another "
                "train.checkpoint_dir"
            ) from None
        write_json({"pid": os.getpid(), "host": platform.node()}, self.dir / OWNER_FILE)
        self.ctrl_c.install()
        previous = read_json(self.dir / STATE_FILE)
        if previous.get("fingerprint") == self.fingerprint and self.resume:
            self.state = previous
            if self.epochs_done:
                log.info("resuming from the checkpoint of epoch %d in %s", self.epochs_done, self.dir)
        elif previous:
            if previous.get("epochs"):
                reason = "train.resume=false" if self.resume is False else "made with another config or data"
                log.warning("checkpoint of epoch %d in %s not resumed (%s); starting afresh",
                            previous["epochs"], self.dir, reason)
            self.abandoned_run_id = previous.get("run_id")
            self._clear()
        self.cluster.broadcast(self.epochs_done)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.ctrl_c.restore()
        (self.dir / OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()
        if exc_type is KeyboardInterrupt:
            raise TrainingInterrupted(f"interrupted; {self.resume_hint()}") from None
        if isinstance(exc, UserError) and not isinstance(exc, CheckpointInUse):
            raise type(exc)(f"{exc}; {self.resume_hint()}") from exc

    @property
    def epochs_done(self) -> int:
        return int(self.state["epochs"])

    @property
    def run_id(self) -> str | None:
        """The MLflow run the checkpoint belongs to (tracked path), None before one is bound or when offline."""
        return self.state["run_id"]

    @property
    def history(self) -> list[dict]:
        """Logged metrics of every finished epoch: [{'epoch': 1, 'loss': ..., ...}, ...]."""
        return self.state["history"]

    def history_table(self, metrics: tuple[str, ...]) -> pd.DataFrame:
        """The history as one row per epoch: epoch and the given metrics (NaN where fit logged none)."""
        return pd.DataFrame(self.history).reindex(columns=["epoch", *metrics])

    def bind(self, run_id: str) -> None:
        """Record the MLflow run this checkpoint belongs to, so a restart resumes it (or marks it failed)."""
        self.state["run_id"] = run_id
        write_json(self.state, self.dir / STATE_FILE)

    def restore(self, model: keras.Model) -> int:
        """Load the checkpoint's weights and optimizer state into the compiled model; return the epochs done."""
        return _load_epoch(model, self.dir, self.epochs_done)

    def save(self, model: keras.Model, epoch: int, logs: dict) -> None:
        """Checkpoint a finished epoch (1-based): weights + optimizer, then the state that points at them."""
        weights = self.dir / WEIGHTS_PATTERN.format(epoch)
        partial = weights.with_name("partial-" + weights.name)
        with self.cluster.alone():
            model.save_weights(partial)
        os.replace(partial, weights)
        history = [row for row in self.history if row["epoch"] < epoch]
        self.state = {**self.state, "epochs": epoch,
                      "history": [*history, {"epoch": epoch, **{k: float(v) for k, v in logs.items()}}]}
        write_json(self.state, self.dir / STATE_FILE)
        for old in self.dir.glob(WEIGHTS_PATTERN.replace("{:04d}", "*")):
            if old != weights:
                old.unlink()

    def callback(self) -> keras.callbacks.Callback:
        """The Keras callback that checkpoints every finished epoch; place it before anything that logs."""
        return _EpochCheckpoint(self)

    def finish(self) -> None:
        """The fit is complete and its outputs are written: drop the checkpoint."""
        self._clear()

    def resume_hint(self) -> str:
        if not self.epochs_done:
            return "no epoch was finished, nothing to resume"
        return (f"the checkpoint of epoch {self.epochs_done} is in {self.dir}: run the same command again to "
                "resume from it")

    def _owner(self) -> str:
        owner = read_json(self.dir / OWNER_FILE)
        return f"process {owner['pid']} on {owner['host']}" if owner else "another process"

    def _clear(self) -> None:
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        for path in [*self.dir.glob("epoch-*.weights.h5"), *self.dir.glob("partial-*.weights.h5")]:
            path.unlink()
        shutil.rmtree(self.dir / "backup", ignore_errors=True)  # left by versions that used BackupAndRestore
        self.state = self._fresh_state()

    def _fresh_state(self) -> dict:
        return {"fingerprint": self.fingerprint, "run_id": None, "epochs": 0, "history": []}


class CheckpointReader:
    """Process 0's checkpoint folder as the other data-parallel processes see it: read, never written.

    On entry it waits for process 0 to decide whether to resume and learns the epochs done from it, then checks
    that the folder (on a filesystem every process shares) says the same.
    """

    def __init__(self, checkpoint_dir: str | Path, cluster: Cluster):
        self.dir, self.cluster = Path(checkpoint_dir), cluster
        self.epochs_done = 0

    def __enter__(self) -> "CheckpointReader":
        self.epochs_done = self.cluster.broadcast(0)
        seen = read_json(self.dir / STATE_FILE).get("epochs", 0)
        if seen != self.epochs_done:
            raise CheckpointUnreadable(
                f"process 0 resumes from epoch {self.epochs_done} but process {self.cluster.process_id} finds epoch "
                f"{seen} in {self.dir}: put train.checkpoint_dir on a filesystem every process shares"
            )
        return self

    def __exit__(self, *exc) -> None:
        pass

    def restore(self, model: keras.Model) -> int:
        """Load process 0's checkpoint into the compiled model; return the epochs done."""
        return _load_epoch(model, self.dir, self.epochs_done)

    def callback(self) -> keras.callbacks.Callback:
        """Nothing to checkpoint: process 0 does."""
        return keras.callbacks.Callback()


def _load_epoch(model: keras.Model, folder: Path, epochs_done: int) -> int:
    if not epochs_done:
        return 0
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(folder / WEIGHTS_PATTERN.format(epochs_done))
    return epochs_done


class _CtrlC:
    """Ctrl-C during a training stops it at the next batch's end, not wherever Python happens to be: a
    KeyboardInterrupt raised inside a library's clean-up (a destructor, a logging call) can be swallowed there and the
    training go on. A second Ctrl-C stops at once. Left alone where SIGINT is ignored or handled by someone else."""

    def __init__(self):
        self.pressed, self.previous = False, None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def _handle(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def check(self) -> None:
        """KeyboardInterrupt if Ctrl-C was pressed."""
        if self.pressed:
            raise KeyboardInterrupt


class _EpochCheckpoint(keras.callbacks.Callback):
    def __init__(self, run: CheckpointFolder):
        super().__init__()
        self.run = run

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.run.ctrl_c.check()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.run.save(self.model, epoch + 1, logs or {})
        self.run.ctrl_c.check()
