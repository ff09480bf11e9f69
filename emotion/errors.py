"""The exceptions a user can hit: each message says what is wrong, with which thing, and what to do."""


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
