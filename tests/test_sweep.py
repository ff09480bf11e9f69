"""Sweeps: a 3-trial study in one process (parent run, best trial, figure, a pruned trial), two worker processes
sharing one study, and a worker killed mid-trial whose trial ends failed and retried, never running."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.trial import TrialState

from conftest import ROOT, compose_config
from emotion import data, sweep, tracking

pytestmark = pytest.mark.slow

# a tiny model and a space of tiny widths: a trial trains in about a second
TINY = ("model.filters=[8,16]", "model.block_dropout=[0.1,0.1]", "model.dense_units=16", "train.batch_size=8",
        "sweep.space.width.choices=['[4,8]','[8,16]']")


@pytest.fixture(scope="module")
def index_dir(kaggle_folder, tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("sweep") / "index"
    cfg = compose_config(f"data.source={kaggle_folder}", f"data.index_dir={index}")
    data.write_index(data.index_source(cfg.data, cfg.seed), cfg.data.index_dir)
    return index


@pytest.fixture(params=["sqlite"])
def study_storage(request, tmp_path) -> str:
    """An empty Optuna storage, one URL per engine the workers of a team may share."""
    return {"sqlite": lambda: f"sqlite:///{tmp_path}/optuna.db"}[request.param]()


def base_overrides(index_dir: Path, storage: str, *more: str) -> list[str]:
    return [f"data.index_dir={index_dir}", f"sweep.storage={storage}", *TINY, *more]


def run_in_process(overrides: list[str]) -> tuple[optuna.Study, optuna.trial.FrozenTrial | None]:
    """What stages.sweep does, in this process: each trial composes the same overrides and its own."""
    cfg = compose_config(*overrides)
    tracking.setup(cfg.tracking)
    return sweep.run(cfg, data.load_cache(cfg.data.index_dir), lambda trial: compose_config(*overrides, *trial))


def trial_runs(study: optuna.Study) -> dict[str, list]:
    """Every child run of the study's parent, by its trial tag."""
    runs = mlflow.search_runs(filter_string=f"tags.{tracking.PARENT_TAG} = '{study.user_attrs[sweep.PARENT_ATTR]}'",
                              output_format="list")
    by_trial = {}
    for run in runs:
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


def test_a_sweep_records_every_trial_under_a_parent_with_the_best(index_dir, mlflow_store, monkeypatch):
    monkeypatch.setitem(sweep.PRUNERS, "none", lambda cfg, epochs: PruneTrialOne())
    study, best = run_in_process(base_overrides(index_dir, "sqlite:///optuna.db", "sweep.n_trials=3",
                                                "sweep.pruner=none", "train.epochs=2", "sweep.sampler_seed=0"))
    states = [t.state for t in study.trials]
    runs = trial_runs(study)
    print(f"\ntrials expected 3, found {len(states)}: {[s.name for s in states]}; child runs {sum(map(len, runs.values()))}")
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    assert sorted(runs) == [f"fer2013/{n}" for n in range(3)] and all(len(r) == 1 for r in runs.values())
    for trial in study.trials:
        run = runs[f"fer2013/{trial.number}"][0]
        assert run.info.run_id == trial.user_attrs[sweep.RUN_ATTR] and run.info.status == "FINISHED"
        assert_run_has_trial_params(run, trial)
    pruned = runs["fer2013/1"][0]
    assert pruned.data.tags[sweep.PRUNED_TAG] == "1"
    assert [m.step for m in MlflowClient().get_metric_history(pruned.info.run_id, "val_accuracy")] == [1]

    parent = MlflowClient().get_run(study.user_attrs[sweep.PARENT_ATTR])
    best_run = runs[f"fer2013/{best.number}"][0]
    best_history = MlflowClient().get_metric_history(best_run.info.run_id, "val_accuracy")
    print(f"best trial {best.number}: parent {parent.data.metrics['best_val_accuracy']:.4f}, "
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
