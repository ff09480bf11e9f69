"""train.distribution: two JAX processes on 127.0.0.1 train as one process would, process 0 alone tracks and writes;
settings that cannot work fail in one line before any work."""

import os
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import ROOT, compose_config, stage_command, write_kaggle_folder
from emotion.config import TrainConfig
from emotion.data import dataset
from emotion.errors import CheckpointUnreadable, ConfigError
from emotion.tracking import model_io, runs, store
from emotion.training import checkpoints, distributed, trainer
from services import free_port


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.distribution=horovod"], r"train.distribution='horovod': use none, data_parallel \(JAX backend\) or"),
        (["train.num_processes=2"], r"apply to several processes: set train.distribution=data_parallel"),
        (["train.distribution=data_parallel", "train.num_processes=2", "train.process_id=2"],
         r"train.process_id=2: must be in \[0, train.num_processes\)"),
        (["train.distribution=data_parallel", "train.coordinator_address=node0"],
         r"train.coordinator_address='node0': use host:port of process 0"),
    ],
)
def test_bad_distribution_settings_fail_by_name(overrides, message):
    with pytest.raises(ConfigError, match=message):
        compose_config(*overrides)


@pytest.mark.parametrize(
    "distribution, backend, message",
    [
        ("data_parallel", "tensorflow", r"^train.distribution=data_parallel runs on the jax backend but Keras uses "
                                        r"tensorflow: set KERAS_BACKEND=jax \(or train.distribution=mirrored for the"),
        ("mirrored", "jax", r"^train.distribution=mirrored runs on the tensorflow backend but Keras uses jax: set "
                            r"KERAS_BACKEND=tensorflow$"),
    ],
)
def test_a_distribution_on_the_wrong_backend_says_which_to_set(distribution, backend, message, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    with pytest.raises(ConfigError, match=message):
        distributed.connect(compose_config(f"train.distribution={distribution}").train)


def test_processes_come_from_the_config_or_else_the_environment():
    torchrun = {"MASTER_ADDR": "node0", "MASTER_PORT": "29500", "WORLD_SIZE": "4", "RANK": "2"}
    assert distributed.process_settings(TrainConfig(distribution="data_parallel"), torchrun) == ("node0:29500", 4, 2)
    keras_env = torchrun | {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234", "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
    assert distributed.process_settings(TrainConfig(distribution="data_parallel", process_id=3), keras_env) == (
        "10.0.0.1:1234", 4, 3)
    assert distributed.process_settings(TrainConfig(distribution="data_parallel"), {}) == (None, 1, 0)
    with pytest.raises(ConfigError, match="over 2 processes needs process 0's host:port and this process's id"):
        distributed.process_settings(TrainConfig(distribution="data_parallel", num_processes=2), {"RANK": "1"})


def test_each_process_feeds_its_part_of_a_global_batch_cut_to_the_device_count():
    second = distributed.Cluster(process_id=1, num_processes=2, num_devices=4, shards_batches=True)
    x, y = np.arange(10), np.arange(10) * 10
    assert [part.tolist() for part in second.local_part((x, y))] == [[4, 5, 6, 7], [40, 50, 60, 70]]
    assert (second.batch_count(30, 8), second.batch_count(27, 8)) == (4, 3)  # a last batch of 3 < 4 devices is left
    assert distributed.LOCAL.local_part((x,))[0] is x and distributed.LOCAL.batch_count(27, 8) == 4


def test_other_processes_load_process_0s_checkpoint_or_say_the_folder_is_not_shared(tmp_path, monkeypatch):
    cfg = compose_config("model.filters=[8]", "model.block_dropout=[0.1]", "model.dense_units=8")
    trained, fresh = (trainer.compile_model(cfg.model, cfg.train) for _ in range(2))
    trained.optimizer.build(trained.trainable_variables)
    with checkpoints.CheckpointFolder(tmp_path, {"any": "settings"}) as run:
        run.save(trained, 2, {"loss": 1.0})
    other = distributed.Cluster(process_id=1, num_processes=2)
    monkeypatch.setattr(distributed.Cluster, "broadcast", lambda self, value: 2)  # process 0 resumes from epoch 2
    assert trainer.weights_digest(fresh) != trainer.weights_digest(trained)
    with checkpoints.CheckpointReader(tmp_path, other) as checkpoint:
        assert checkpoint.restore(fresh) == 2
    assert trainer.weights_digest(fresh) == trainer.weights_digest(trained)
    monkeypatch.setattr(distributed.Cluster, "broadcast", lambda self, value: 3)
    message = (r"^process 0 resumes from epoch 3 but process 1 finds epoch 2 in .+: "
               r"put train.checkpoint_dir on a filesystem every process shares$")
    with pytest.raises(CheckpointUnreadable, match=message):
        checkpoints.CheckpointReader(tmp_path, other).__enter__()


@pytest.mark.slow
def test_mirrored_trains_and_checkpoints_under_tensorflows_strategy(tmp_path):
    cfg = compose_config("train.distribution=mirrored", "train.epochs=1", "train.batch_size=4", "model.filters=[8]",
                         "model.block_dropout=[0.1]", "model.dense_units=8")
    cluster = distributed.connect(cfg.train)  # every GPU here, or the CPU where there is none
    rng = np.random.default_rng(0)
    arrays = {split: (rng.integers(0, 256, (n, 48, 48), np.uint8), np.arange(n) % 7) for split, n in
              (("train", 10), ("val", 3))}
    with checkpoints.CheckpointFolder(tmp_path, {"any": "settings"}, cluster=cluster) as run:
        model = trainer.fit(cfg, arrays, checkpoint=run, cluster=cluster)
        assert run.epochs_done == 1 and model.distribute_strategy is cluster.distribution


# --- two processes -------------------------------------------------------------------------------------------------

# 5 faces per class: 28 train + 7 val; a global batch of 14 is 2 steps, 7 rows per process, none left out.
# SGD, not Adam: Adam moves a weight whose gradient is 0 but for rounding (a conv bias before BatchNorm) by +-lr,
# by the rounding's sign, which would hide what the test looks for under 5e-4 of noise
TINY = ["train.epochs=1", "train.batch_size=14", "train.optimizer=sgd", "model.filters=[8,16]",
        "model.block_dropout=[0.1,0.1]", "model.dense_units=16", "augment=standard", "hydra.run.dir=.",
        "hydra.output_subdir=null"]
# Two devices each sum half the batch's gradients and then add the halves: another order of float32 additions
# than one device summing the whole batch, so the weights agree to rounding, not bit for bit
TOLERANCE = 1e-6


def start_train(cwd: Path, index_dir: Path, *overrides: str) -> subprocess.Popen:
    """python -m stages.train on JAX's CPU backend (one CPU device per process), tracking to cwd/mlflow.db."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                        "JAX_NUM_CPU_DEVICES": "1", "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",  # cross-process
                        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db"}
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen(stage_command("train", f"data.index_dir={index_dir}", *TINY, *overrides),
                            cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out[-3000:]
    return out


def logged_model(cwd: Path):
    """The model process 0 logged in cwd's MLflow store, and the number of runs there."""
    client = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    found = client.search_runs([client.get_experiment_by_name("fer2013").experiment_id])
    run_id = store.read_run_pointer(cwd / "artifacts/train_run.json")
    runs.mlflow.set_tracking_uri(f"sqlite:///{cwd}/mlflow.db")
    try:
        return model_io.load_model_files(runs.download_model(run_id, cwd / "downloaded")), len(found)
    finally:
        runs.mlflow.set_tracking_uri(None)


@pytest.mark.services
def test_two_jax_processes_train_as_one_and_only_process_0_tracks_and_writes(tmp_path):
    pytest.importorskip("jax", reason="JAX is not installed: pip install -e '.[dev]' brings it")
    cfg = compose_config(f"data.source={write_kaggle_folder(tmp_path / 'fer', per_class=5)}",
                         f"data.index_dir={tmp_path / 'index'}")
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    cluster = ["train.distribution=data_parallel", f"train.coordinator_address=127.0.0.1:{free_port()}",
               "train.num_processes=2", f"train.checkpoint_dir={tmp_path / 'checkpoints'}"]  # shared by both
    # process 1 runs in a folder of its own, to show that it writes nothing; all three run at once
    processes = [start_train(tmp_path / "chief", tmp_path / "index", *cluster, "train.process_id=0"),
                 start_train(tmp_path / "other", tmp_path / "index", *cluster, "train.process_id=1"),
                 start_train(tmp_path / "alone", tmp_path / "index")]
    try:
        chief_log, other_log, _ = [finish(process) for process in processes]
    finally:  # one that failed leaves the other waiting for it
        for process in processes:
            process.kill()

    chief, count = logged_model(tmp_path / "chief")
    alone, _ = logged_model(tmp_path / "alone")
    assert count == 1
    assert "global batch 14 over 2 devices" in chief_log
    assert re.search(r"process 1 of 2 done in step with process 0 \(weights (\w+)\)", other_log)[1] == (
        trainer.weights_digest(chief))  # identical weights, bit for bit
    assert not {"mlflow.db", "artifacts", "metrics", "plots"} & {path.name for path in (tmp_path / "other").iterdir()}
    assert not list((tmp_path / "checkpoints").glob("*.weights.h5"))  # process 0 dropped it when done
    for mine, reference in zip(chief.get_weights(), alone.get_weights()):  # measured: 1.5e-8 apart at most
        np.testing.assert_allclose(mine, reference, atol=TOLERANCE, rtol=0)
