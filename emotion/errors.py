"""The exceptions a user can hit: each message says what is wrong, with which thing, and what to do; and how every
command ends on them (user_errors_exit)."""

import functools
import sys

INTERRUPTED_EXIT = 130  # what shells report for Ctrl-C


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback."""


class DataError(UserError):
    """The data source is missing, empty or malformed."""


class ConfigError(UserError):
    """A configuration value is out of range or inconsistent."""


class ModelNotFound(UserError):
    """No model exists at the given run id, URI or folder."""


class ModelInvalid(UserError):
    """A model file exists but cannot be loaded (refused architecture, corrupt weights)."""


class TrackingUnavailable(UserError):
    """The MLflow tracking server cannot be reached."""


class CameraUnavailable(UserError):
    """The camera cannot be opened or returns no frames."""


class CheckpointInUse(UserError):
    """Another live training process owns the checkpoint folder."""


class CheckpointUnreadable(UserError):
    """A data-parallel process cannot see the checkpoint process 0 resumes from."""


class TrainingInterrupted(UserError):
    """Training was stopped (Ctrl-C); the message says how to resume."""


class StudyUnavailable(UserError):
    """A sweep's Optuna storage cannot be opened, or its study is incomplete."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type's name when it has none), at most limit characters: how
    a library's error is quoted inside one of ours."""
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:limit]


def user_errors_exit(main):
    """Wrap a command's entry point (a stage, webcam, batch, serve): a UserError ends it with one `error: ...` line
    and status 1, Ctrl-C with status 130 (a training's resume hint printed as its error line); what the command
    finished before is kept."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except TrainingInterrupted as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT)
        except UserError as err:
            sys.exit(f"error: {err}")
        except KeyboardInterrupt:
            sys.exit(INTERRUPTED_EXIT)

    return wrapper
