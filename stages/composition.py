"""conf/ composed by Hydra with command-line overrides, for every entry point that is not a @hydra.main stage: the
realtime commands, params.yaml, the benchmarks and the tests (a stage gets the same from @hydra.main)."""

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from emotion import config
from emotion.project_files import project_path


def compose_conf(overrides: Sequence[str] = ()) -> DictConfig:
    """conf/config.yaml composed with overrides (e.g. realtime.scale_factor=1.2), as Hydra leaves it."""
    with initialize_config_dir(str(project_path("conf")), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def load_config(overrides: Sequence[str] = ()) -> config.Config:
    """compose_conf(overrides) checked against the schema: a bad value fails here by name."""
    return config.validate(compose_conf(overrides))
