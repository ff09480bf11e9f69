"""Sweeps: a 3-trial study in one process (parent run, best trial, figure, a pruned trial), two worker processes
sharing one study (SQLite, PostgreSQL), a worker killed mid-trial whose trial ends failed and retried, never running,
and PostgreSQL restarted mid-trial with no trial lost."""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.trial import TrialState

from conftest import ROOT, compose_config, report, stage_command
from emotion.data import dataset
from emotion.errors import ConfigError, StudyUnavailable
from emotion.tracking import runs
from emotion.training import sweep

# a tiny model and a space of tiny widths: a trial trains in about a second
TINY = ("model.filters=[8,16]", "model.block_dropout=[0.1,0.1]", "model.dense_units=16", "train.batch_size=8",
        "sweep.space.width.choices=['[4,8]','[8,16]']")
EXPERIMENT = compose_config().tracking.experiment


@pytest.fixture(scope="module")
def index_dir(kaggle_folder, tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("sweep") / "index"
    cfg = compose_config(f"data.source={kaggle_folder}", f"data.index_dir={index}")
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    return index


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def study_storage(request, tmp_path) -> str:
    """An empty Optuna storage, one URL per engine the workers of a team may share (a fresh PostgreSQL database
    per test on the session's server)."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres").create_database(f"optuna_{uuid.uuid4().hex}")
    return f"sqlite:///{tmp_path}/optuna.db"


def base_overrides(index_dir: Path, storage: str, *more: str) -> list[str]:
    return [f"data.index_dir={index_dir}", f"sweep.storage={storage}", *TINY, *more]


def run_in_process(overrides: list[str]) -> tuple[optuna.Study, optuna.trial.FrozenTrial | None]:
    """What stages.sweep does, in this process: each trial composes the same overrides and its own."""
    cfg = compose_config(*overrides)
    runs.setup(cfg.tracking)
    return sweep.run(cfg, dataset.load_cache(cfg.data.index_dir), lambda trial: compose_config(*overrides, *trial))


def trial_runs(study: optuna.Study) -> dict[str, list]:
    """Every child run of the study's parent, by its trial tag."""
    found = mlflow.search_runs(experiment_names=[EXPERIMENT], output_format="list",
                              filter_string=f"tags.{runs.PARENT_TAG} = '{study.user_attrs[sweep.PARENT_ATTR]}'")
    by_trial = {}
    for run in found:
        by_trial.setdefault(run.data.tags[sweep.TRIAL_TAG], []).append(run)
    return by_trial


def assert_run_has_trial_params(run, trial: optuna.trial.FrozenTrial) -> None:
    """The run trained what the trial sampled: its logged config holds each parameter's value."""
    params = run.data.params
    assert float(params["train.lr"]) == trial.params["lr"]
    assert float(params["train.weight_decay"]) == trial.params["weight_decay"]
    assert float(params["model.dense_dropout"]) == trial.params["dropout"]
    assert yaml.safe_load(params["model.filters"]) == yaml.safe_load(trial.params["width"])
    assert params["augment.flip"] == str(trial.params["augmentation"] == "standard")


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 at its first report: a pruned trial on demand."""

    def prune(self, study, trial) -> bool:
        return trial.number == 1


@pytest.mark.slow
def test_a_sweep_records_every_trial_under_a_parent_with_the_best(index_dir, mlflow_store, monkeypatch):
    monkeypatch.setitem(sweep.PRUNERS, "none", lambda cfg, epochs: PruneTrialOne())
    study, best = run_in_process(base_overrides(index_dir, "sqlite:///optuna.db", "sweep.n_trials=3",
                                                "sweep.pruner=none", "train.epochs=2", "sweep.sampler_seed=0"))
    states = [t.state for t in study.trials]
    by_trial = trial_runs(study)
    report(f"trials expected 3, found {len(states)}: {[s.name for s in states]}; "
           f"child runs {sum(map(len, by_trial.values()))}")
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    assert sorted(by_trial) == [f"fer2013/{n}" for n in range(3)] and all(len(r) == 1 for r in by_trial.values())
    for trial in study.trials:
        run = by_trial[f"fer2013/{trial.number}"][0]
        assert run.info.run_id == trial.user_attrs[sweep.RUN_ATTR] and run.info.status == "FINISHED"
        assert run.info.run_name == f"fer2013-trial-{trial.number}"
        assert_run_has_trial_params(run, trial)
    pruned = by_trial["fer2013/1"][0]
    assert pruned.data.tags[sweep.PRUNED_TAG] == "1"
    assert [m.step for m in MlflowClient().get_metric_history(pruned.info.run_id, "val_accuracy")] == [1]

    parent = MlflowClient().get_run(study.user_attrs[sweep.PARENT_ATTR])
    best_run = by_trial[f"fer2013/{best.number}"][0]
    best_history = MlflowClient().get_metric_history(best_run.info.run_id, "val_accuracy")
    report(f"best trial {best.number}: parent {parent.data.metrics['best_val_accuracy']:.4f}, "
          f"child {max(m.value for m in best_history):.4f}")
    assert best.value == max(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    assert parent.data.metrics["best_val_accuracy"] == round(max(m.value for m in best_history), 4)
    assert parent.data.tags["best_trial"] == str(best.number)
    assert parent.data.tags["best_run_id"] == best_run.info.run_id
    assert {k.removeprefix("best."): v for k, v in parent.data.tags.items() if k.startswith("best.")} == {
        name: str(value) for name, value in best.params.items()}
    assert (parent.data.metrics["trials_complete"], parent.data.metrics["trials_pruned"]) == (2, 1)
    assert parent.info.status == "FINISHED" and parent.data.params["sweep.n_trials"] == "3"
    assert sweep.FIGURE in {a.path for a in MlflowClient().list_artifacts(parent.info.run_id)}


def start_worker(workdir: Path, overrides: list[str]) -> subprocess.Popen:
    """`python -m stages.sweep` in workdir, tracking to workdir's SQLite MLflow store (made here first: two MLflow
    clients creating one SQLite store's tables at once collide)."""
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    MlflowClient().search_experiments()
    env = os.environ | {"PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"}
    return subprocess.Popen(stage_command("sweep", *overrides, "hydra.run.dir=.", "hydra.output_subdir=null"),
                            cwd=workdir, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.services
def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(index_dir, study_storage, mlflow_store):
    overrides = base_overrides(index_dir, study_storage, "sweep.study=shared", "sweep.n_trials=2", "train.epochs=1")
    workers = [start_worker(Path.cwd(), overrides) for _ in range(2)]
    errors = [worker.communicate(timeout=300)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors[0][-2000:] + errors[1][-2000:]

    mlflow.set_tracking_uri(mlflow_store)
    study = optuna.load_study(study_name="shared", storage=study_storage)
    by_trial = trial_runs(study)
    parents = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=f"tags.{sweep.STUDY_TAG} = 'shared'",
                                 output_format="list")
    report(f"{study_storage.split(':')[0]}: trials expected 4, found {len(study.trials)} "
          f"({[t.state.name for t in study.trials]}); child runs {sum(map(len, by_trial.values()))}, "
          f"parents {len(parents)}")
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    assert sorted(by_trial) == [f"shared/{n}" for n in range(4)] and all(len(r) == 1 for r in by_trial.values())
    for trial in study.trials:
        assert by_trial[f"shared/{trial.number}"][0].info.run_id == trial.user_attrs[sweep.RUN_ATTR]
        assert_run_has_trial_params(by_trial[f"shared/{trial.number}"][0], trial)
    assert len(parents) == 1 and parents[0].info.run_id == study.user_attrs[sweep.PARENT_ATTR]


@pytest.mark.slow
@pytest.mark.services
def test_a_worker_killed_mid_trial_leaves_it_failed_and_retried_never_running(index_dir, mlflow_store):
    storage = f"sqlite:///{Path.cwd()}/optuna.db"
    heartbeat = ("sweep.heartbeat_interval_s=1", "sweep.grace_period_s=2", "sweep.pruner=none", "sweep.n_trials=1")
    worker = start_worker(Path.cwd(), base_overrides(index_dir, storage, *heartbeat, "train.epochs=500"))
    deadline = time.monotonic() + 120
    while not (running := [t for t in optuna_trials(storage) if t.state == TrialState.RUNNING and t.intermediate_values]):
        assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()[1][-3000:]
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    time.sleep(3)  # past the grace period
    killed = running[0]

    study, best = run_in_process(base_overrides(index_dir, storage, *heartbeat, "train.epochs=1"))
    trials = study.trials
    by_trial = trial_runs(study)
    report(f"killed in epoch {max(killed.intermediate_values) + 1}: trials {[t.state.name for t in trials]}, "
          f"runs {[r.info.status for n in sorted(by_trial) for r in by_trial[n]]}")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == killed.params and trials[1].system_attrs["failed_trial"] == killed.number
    assert [r.info.status for r in by_trial["fer2013/0"]] == ["KILLED"]
    assert [r.info.status for r in by_trial["fer2013/1"]] == ["FINISHED"] and best.number == 1


def optuna_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of the default study, [] before it exists."""
    try:
        return optuna.load_study(study_name="fer2013", storage=storage).trials
    except KeyError:
        return []


@pytest.mark.parametrize("storage, error, message", [
    ("optuna.db", ConfigError, r"sweep.storage='optuna.db': not an SQLAlchemy URL; use sqlite:///optuna.db"),
    ("sqlite:////nonexistent/dir/optuna.db", StudyUnavailable,
     r"cannot open the Optuna storage sqlite:////nonexistent/dir/optuna.db: .*; check sweep.storage"),
    ("postgresql+nodriver://u:secret@127.0.0.1/db", StudyUnavailable, r"^cannot open the Optuna storage "
     r"postgresql\+nodriver://u:\*\*\*@127.0.0.1/db: "),
])
def test_a_bad_storage_fails_in_one_line_without_its_password(workdir, storage, error, message):
    cfg = compose_config(f"sweep.storage={storage}", "sweep.heartbeat_interval_s=1", "sweep.grace_period_s=2")
    with pytest.raises(error, match=message) as caught:
        sweep.open_storage(cfg.sweep)
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)



@pytest.mark.slow
@pytest.mark.services
@pytest.mark.parametrize("patience_s", [60, 0], ids=["waited-out", "worker-stops"])
def test_postgresql_restarted_mid_sweep_loses_no_trial(index_dir, postgres, mlflow_store, patience_s):
    """PostgreSQL stops for 3 s while trial 0 trains: a worker whose patience outlasts that finishes the sweep; one
    with none stops in one line, and a second worker fails the stale trial and runs it again."""
    # trust authentication ignores the password, but no output may show it
    storage = postgres.create_database(f"optuna_{uuid.uuid4().hex}").replace("postgres@", "postgres:secret@")
    overrides = base_overrides(index_dir, storage, "sweep.heartbeat_interval_s=1", "sweep.grace_period_s=2",
                               f"sweep.storage_patience_s={patience_s}", "sweep.pruner=none", "sweep.n_trials=2",
                               "train.epochs=5")
    worker = start_worker(Path.cwd(), overrides)
    deadline = time.monotonic() + 120
    while not any(t.intermediate_values for t in optuna_trials(storage)):  # trial 0 reported its first epoch
        assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()[1][-3000:]
        time.sleep(0.2)
    postgres.stop()
    try:
        time.sleep(3)
    finally:
        postgres.start()
    err = worker.communicate(timeout=300)[1]
    last, logged = err.strip().splitlines()[-1], Path("sweep.log").read_text()
    retries = logged.count("unavailable ((psycopg.OperationalError)")
    report(f"patience {patience_s} s, PostgreSQL down 3 s: worker exit {worker.returncode}, {retries} storage calls "
          f"retried; last line: {last}")
    assert "secret" not in err + logged
    if patience_s:
        assert worker.returncode == 0 and retries, err[-3000:]
    else:
        assert worker.returncode == 1, err[-3000:]
        assert last.startswith("error: lost the Optuna storage postgresql+psycopg://postgres:***@127.0.0.1:"), last
        assert last.endswith("run the same command again: a trial left running is failed after "
                             "sweep.grace_period_s and queued again"), last
        time.sleep(3)  # past the grace period
        second = start_worker(Path.cwd(), overrides)
        assert second.wait(timeout=300) == 0, second.communicate()[1][-3000:]

    mlflow.set_tracking_uri(mlflow_store)
    study = optuna.load_study(study_name="fer2013", storage=storage)
    by_trial = trial_runs(study)
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    report(f"trials expected >= 2 finished, found {len(study.trials)}: {[t.state.name for t in study.trials]}; "
          f"MLflow runs {[(n, [r.info.status for r in by_trial[n]]) for n in sorted(by_trial)]}")
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in study.trials)
    assert len(finished) == 2 and len(study.trials) == (2 if patience_s else 3)
    assert sorted(by_trial) == sorted(trial_key(t) for t in study.trials)
    assert all(len(r) == 1 for r in by_trial.values())
    for trial in finished:
        assert by_trial[trial_key(trial)][0].info.run_id == trial.user_attrs[sweep.RUN_ATTR]
        assert by_trial[trial_key(trial)][0].info.status == "FINISHED"
        assert_run_has_trial_params(by_trial[trial_key(trial)][0], trial)
    if not patience_s:  # the interrupted trial ran again with the same parameters
        # the stopped worker ended the trial's run as failed; a worker killed outright leaves it to be marked KILLED
        assert study.trials[0].state == TrialState.FAIL and by_trial["fer2013/0"][0].info.status == "FAILED"
        assert study.trials[1].system_attrs["failed_trial"] == 0 and study.trials[1].params == study.trials[0].params


def trial_key(trial: optuna.trial.FrozenTrial) -> str:
    return sweep.trial_key("fer2013", trial.number)
