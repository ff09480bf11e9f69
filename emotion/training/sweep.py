"""Hyper-parameter sweeps: an Optuna study whose trials are tracked training runs, shared by any number of workers.

Workers opened on the same study name and storage (sqlite:///... on one machine, a PostgreSQL URL for a team) ask
the one study for trials. A trial's parameters become command-line overrides that the caller composes into a config;
its training run nests under the study's parent MLflow run, and each epoch's val_accuracy goes to the pruner. A
worker that dies mid-trial stops its heartbeat: after the grace period the next worker to ask for a trial marks it
failed, marks its MLflow run KILLED and queues it again with the same parameters. A database that is briefly
away (a restart) is waited for, sweep.storage_patience_s at most.
"""

import functools
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import optuna
import sqlalchemy.exc
from matplotlib import pyplot as plt
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from emotion import config
from emotion.config import Config, SearchParam, SweepConfig
from emotion.errors import ConfigError, StudyUnavailable, first_line
from emotion.tracking import runs
from emotion.training import tracked

log = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"  # study user attribute: the run every trial's run nests under
RUN_ATTR = "mlflow_run_id"  # trial user attribute: its training run
STUDY_TAG, TRIAL_TAG = "sweep_study", "sweep_trial"  # on the parent run: the study; on a trial's run: <study>/<n>
PRUNED_TAG = "sweep_pruned_after_epoch"
FIGURE = "parallel_coordinates.png"
STORAGE_ATTEMPTS = 3  # a storage that fails this often is reported
PARENT_WAIT_S = 60  # how long a joining worker waits for the study's creator to record the parent run
RECONNECT_WAIT_S = 1  # between tries to reach a storage that went away
PRUNERS = {
    "median": lambda cfg, epochs: optuna.pruners.MedianPruner(cfg.pruner_startup_trials, cfg.pruner_warmup_epochs),
    "hyperband": lambda cfg, epochs: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs),
    "none": lambda cfg, epochs: optuna.pruners.NopPruner(),
}

Compose = Callable[[list[str]], Config]  # command-line overrides -> the validated config they compose


def overrides(trial: optuna.Trial, space: dict[str, SearchParam]) -> list[str]:
    """Sample every parameter of space for trial; return the overrides that set them (`train.lr=0.0012`)."""
    chosen = []
    for name, param in space.items():
        if param.choices is not None:
            value = trial.suggest_categorical(name, list(param.choices))
        else:
            value = trial.suggest_float(name, param.low, param.high, log=param.log)
        chosen.append(f"{param.key}={value}")
    return chosen


class PruningReporter(keras.callbacks.Callback):
    """Reports each epoch's val_accuracy to the trial and ends the fit there when the pruner says so.

    Put it after the checkpoint and MLflow callbacks: a pruned trial's run keeps every epoch it trained.
    """

    def __init__(self, trial: optuna.Trial):
        super().__init__()
        self.trial, self.pruned_after = trial, 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.trial.report(float((logs or {})["val_accuracy"]), epoch + 1)
        if self.trial.should_prune():
            self.pruned_after = epoch + 1
            self.model.stop_training = True


class RetryStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Queue a trial whose worker died again with the same parameters (up to max_retry times); mark its run KILLED."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        super().__call__(study, trial)
        run_id = runs.find_run(TRIAL_TAG, trial_key(study.study_name, trial.number))
        if run_id:
            runs.mark_abandoned(run_id)
        log.warning("trial %d stopped sending heartbeats (its worker died): marked failed, queued again unless "
                    "retried sweep.max_retry times already", trial.number)


def trial_key(study: str, number: int) -> str:
    return f"{study}/{number}"


def open_storage(cfg: SweepConfig) -> "PatientStorage":
    """Connect to cfg.storage, creating Optuna's tables in it if needed."""
    where = redacted(cfg.storage)
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return _storage(cfg)
        except sqlalchemy.exc.DBAPIError as err:  # workers that start together race to create the tables
            if attempt + 1 == STORAGE_ATTEMPTS:
                raise _unavailable(where, err) from err
            time.sleep(1)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as err:
            raise _unavailable(where, err) from err


def open_study(cfg: SweepConfig, epochs: int, storage: RDBStorage) -> tuple[optuna.Study, bool]:
    """Create cfg.study in storage, or join it if it exists; returns (study, whether this call created it)."""
    if not cfg.space:
        raise ConfigError("sweep.space is empty: pick a search space (sweep=default) or give it entries")
    where = redacted(cfg.storage)
    options = dict(study_name=cfg.study, storage=storage, sampler=optuna.samplers.TPESampler(seed=cfg.sampler_seed),
                   pruner=PRUNERS[cfg.pruner](cfg, epochs))
    try:
        study = optuna.create_study(direction="maximize", **options)
        log.info("created study %s in %s", cfg.study, where)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**options)
        log.info("joined study %s in %s (%d trials so far)", cfg.study, where, len(study.trials))
        return study, False


def _storage(cfg: SweepConfig) -> "PatientStorage":
    with warnings.catch_warnings():  # Optuna calls its heartbeat settings experimental
        warnings.simplefilter("ignore", ExperimentalWarning)
        return PatientStorage(cfg.storage, cfg.storage_patience_s, engine_kwargs=_engine_options(cfg.storage),
                              heartbeat_interval=cfg.heartbeat_interval_s, grace_period=cfg.grace_period_s,
                              heartbeat_stale_trial_callback=RetryStaleTrial(cfg.max_retry))


def _disconnected(err: Exception) -> bool:
    """Whether err is the database's operational failure (unreachable, restarting, locked), not a bad call.

    Optuna wraps SQLAlchemy's error in its own."""
    return any(isinstance(e, sqlalchemy.exc.OperationalError) for e in (err, err.__cause__))


def _patient(method):
    """Retry method while its database is unavailable, up to the storage's patience; then raise StudyUnavailable.

    Once the patience is spent the storage is lost: later calls try once, so Optuna's own bookkeeping after the
    failed trial does not wait again.
    """

    @functools.wraps(method)
    def call(self: "PatientStorage", *args, **kwargs):
        deadline = time.monotonic() + (0 if self.lost else self.patience_s)
        while True:
            try:
                result = method(self, *args, **kwargs)
                self.lost = None
                return result
            except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError) as err:
                if not _disconnected(err):
                    raise
                if time.monotonic() >= deadline:
                    self.lost = StudyUnavailable(
                        f"lost the Optuna storage {redacted(self.url)} for over {self.patience_s} s "
                        f"(sweep.storage_patience_s): {first_line(err.__cause__ or err)}; once it is back, run "
                        "the same command again: a trial left running is failed after sweep.grace_period_s and "
                        "queued again")
                    raise self.lost from err
                log.warning("Optuna storage %s unavailable (%s): retrying", redacted(self.url),
                            first_line(err.__cause__ or err))
                time.sleep(RECONNECT_WAIT_S)

    return call


class PatientStorage(RDBStorage):
    """Optuna's database storage, waiting out a database that is briefly away (a restart): each call retries.

    lost: the error of the call that gave up, until a later call reaches the database again.
    """

    def __init__(self, url: str, patience_s: int, **kwargs):
        self.patience_s, self.lost = patience_s, None
        super().__init__(url, **kwargs)

    def record_heartbeat(self, trial_id: int) -> None:
        """Record that trial_id's worker is alive; a beat that cannot reach the database is skipped, not fatal."""
        try:
            super().record_heartbeat(trial_id)
        except optuna.exceptions.StorageInternalError as err:
            if not _disconnected(err):
                raise
            log.warning("a heartbeat was not recorded: Optuna storage %s unavailable", redacted(self.url))


# the RDBStorage methods that open their own database session (Optuna's cache calls the private ones directly)
for _name in ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
              "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
              "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
              "_create_new_trial", "_set_trial_param", "get_trial_param", "set_trial_state_values",
              "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
              "get_trial_id_from_study_id_trial_number", "get_trial", "_get_trials", "_get_best_trial_id",
              "_get_stale_trial_ids"):
    setattr(PatientStorage, _name, _patient(getattr(RDBStorage, _name)))


def _unavailable(where: str, err: Exception) -> StudyUnavailable:
    return StudyUnavailable(f"cannot open the Optuna storage {where}: {first_line(err)}; check "
                            "sweep.storage (sqlite:///optuna.db, or postgresql+psycopg://user:password@host/db)")


def redacted(url: str) -> str:
    """A storage URL without its password, fit for logs and MLflow params."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(f"sweep.storage={url!r}: not an SQLAlchemy URL; use sqlite:///optuna.db or "
                          "postgresql+psycopg://user:password@host/db") from None


def _engine_options(url: str) -> dict:
    # several worker processes on one SQLite file wait for each other's writes instead of failing at once;
    # a server's pooled connections are tested before use, so those a restart cut are replaced, not failed
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}


def parent_run(study: optuna.Study, created: bool, cfg: Config) -> str:
    """The study's parent MLflow run: made by the worker that created the study, looked up by those that join it."""
    if created:
        sweep = config.to_dict(cfg)["sweep"] | {"storage": redacted(cfg.sweep.storage)}
        run_id = runs.start_parent_run(cfg.tracking.experiment, f"sweep-{study.study_name}",
                                           config.flatten({"sweep": sweep}), {STUDY_TAG: study.study_name})
        study.set_user_attr(PARENT_ATTR, run_id)
        return run_id
    deadline = time.monotonic() + PARENT_WAIT_S
    while (run_id := study.user_attrs.get(PARENT_ATTR)) is None:
        if time.monotonic() > deadline:
            raise StudyUnavailable(f"study {study.study_name} has no MLflow parent run: the worker that created it "
                                   "stopped before recording one; start a new study (sweep.study=NAME)")
        time.sleep(1)
    return run_id


def run(cfg: Config, arrays: dict[str, tuple[np.ndarray, np.ndarray]],
        compose: Compose) -> tuple[optuna.Study, FrozenTrial | None]:
    """Run cfg.sweep.n_trials trials of the study (created or joined), then record its best trial in the parent.

    Returns the study and its best trial so far (None while no trial is complete).
    """
    storage = open_storage(cfg.sweep)
    study, created = open_study(cfg.sweep, cfg.train.epochs, storage)
    parent = parent_run(study, created, cfg)
    try:
        study.optimize(lambda trial: train_trial(trial, cfg.sweep, arrays, compose, parent),
                       n_trials=cfg.sweep.n_trials, catch=())
    except Exception as err:
        if storage.lost is None:
            raise
        raise storage.lost from err  # after a lost storage Optuna's own bookkeeping fails in its own ways
    return study, record_best(study, parent)


def train_trial(trial: optuna.Trial, cfg: SweepConfig, arrays: dict, compose: Compose, parent: str) -> float:
    """Train the trial's config in a run nested under parent; returns the best epoch's val_accuracy."""
    folder = Path(cfg.trials_dir) / cfg.study / f"trial-{trial.number:04d}"
    trial_cfg = compose([*overrides(trial, cfg.space), f"train.checkpoint_dir='{folder / 'checkpoint'}'",
                         f"train.history_file='{folder / 'history.csv'}'", f"train.metrics_file='{folder / 'train.json'}'"])
    keras.backend.clear_session()  # the previous trial's models
    reporter = PruningReporter(trial)
    tags = {runs.PARENT_TAG: parent, TRIAL_TAG: trial_key(cfg.study, trial.number),
            runs.RUN_NAME_TAG: f"{cfg.study}-trial-{trial.number}"}
    run_id, metrics = tracked.train_tracked(trial_cfg, arrays, [reporter], tags)
    trial.set_user_attr(RUN_ATTR, run_id)
    if reporter.pruned_after:
        runs.set_tags(run_id, {PRUNED_TAG: str(reporter.pruned_after)})
        raise optuna.TrialPruned(f"val_accuracy below the pruner's bar after epoch {reporter.pruned_after}")
    return metrics["best_val_accuracy"]


def record_best(study: optuna.Study, parent: str) -> FrozenTrial | None:
    """Log the study's trial counts, best trial (number, run, value, parameters) and figure to the parent run."""
    trials = study.get_trials(deepcopy=False)
    counts = {f"trials_{state.name.lower()}": sum(t.state == state for t in trials) for state in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        log.warning("study %s has no complete trial yet: no best trial to record", study.study_name)
        runs.log_summary(parent, counts, {}, None, FIGURE)
        return None
    best = study.best_trial
    tags = {"best_trial": str(best.number), "best_run_id": best.user_attrs[RUN_ATTR],
            **{f"best.{name}": str(value) for name, value in best.params.items()}}
    figure = parallel_coordinates(study)
    runs.log_summary(parent, {"best_val_accuracy": best.value, **counts}, tags, figure, FIGURE)
    plt.close(figure)
    return best


def parallel_coordinates(study: optuna.Study):
    """Every complete trial as a line through its parameters to its val_accuracy (Optuna's matplotlib figure)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_parallel_coordinate(study, target_name="val_accuracy")
    return ax.figure
