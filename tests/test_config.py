"""Configuration: the reference defaults, range checks by name, and params.yaml in step with conf/."""

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import ROOT, compose_config
from emotion.errors import ConfigError
from stages import params
from stages.composition import compose_conf


def test_params_yaml_is_conf_composed():
    """params.yaml is what DVC composes from conf/; edit conf/ and run `python -m stages.params` to update it."""
    composed = OmegaConf.to_container(compose_conf(), resolve=True)
    assert yaml.safe_load(Path(ROOT / "params.yaml").read_text()) == composed
    assert params.composed_params() == (ROOT / "params.yaml").read_text()


def test_regenerating_params_undoes_an_experiments_overrides(tmp_path, caplog):
    """What `dvc exp run -S train.epochs=2 -S data.max_per_class=300` leaves behind is replaced by conf/ exactly."""
    dirty = yaml.safe_load((ROOT / "params.yaml").read_text())
    dirty["train"]["epochs"], dirty["data"]["max_per_class"] = 2, 300
    target = tmp_path / "params.yaml"
    target.write_text(yaml.safe_dump(dirty, sort_keys=False))
    with caplog.at_level("INFO"):
        params.main(["--output", str(target)])
    assert target.read_text() == (ROOT / "params.yaml").read_text()
    assert "rewritten from conf/" in caplog.text
    assert not params.write_params(target)  # already in step: nothing written


def test_defaults_are_the_reference_recipe():
    cfg = compose_config()
    assert cfg.model.filters == [64, 128, 256, 512]
    assert cfg.model.block_dropout == [0.3, 0.3, 0.4, 0.4]
    assert (cfg.model.dense_units, cfg.model.dense_dropout) == (512, 0.5)
    assert (cfg.train.lr, cfg.train.lr_drop_epochs, cfg.train.lr_drop_values) == (5e-4, [20, 30], [2.5e-4, 5e-5])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.precision) == (40, 64, "float32")
    assert not cfg.augment.enabled
    assert cfg.data.source == "kaggle:msambare/fer2013" and cfg.data.val_fraction == 0.1


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=0", r"train.epochs=0: must be at least 1"),
        ("data.val_fraction=1.5", r"data.val_fraction=1.5: must be between 0 and 1"),
        ("model.block_dropout=[0.3]", r"model.filters has 4 blocks but model.block_dropout has 1"),
        ("train.precision=float8", r"train.precision='float8': use float32, mixed_bfloat16 or mixed_float16"),
        ("train.lr_drop_epochs=[30,20]", r"must be increasing"),
        ("train.epochs=many", r"invalid configuration at train.epochs: Value 'many'"),
        ("+train.epoch=3", r"invalid configuration at train.epoch: Key 'epoch' not in 'TrainConfig'"),
        ("train.lr=-0.01", "train.lr=-0.01: must be positive"),
        ("train.optimizer=rmsprop", "train.optimizer='rmsprop': use adam or sgd"),
        ("train.warmup_epochs=40", r"train.warmup_epochs=40: must be in \[0, train.epochs\)"),
        ("augment.zoom_fraction=0.6", r"augment.zoom_fraction=0.6: must be in \[0, 0.5\)"),
        ("augment.blur_probability=2", r"augment.blur_probability=2.0: must be in \[0, 1\]"),
        ("data.splits=[test]", r"data.splits=\['test'\]: use \[train, test\]"),
        ("sweep.pruner=asha", "sweep.pruner='asha': use median, hyperband, none"),
        ("sweep.grace_period_s=30", "sweep.grace_period_s=30: must exceed sweep.heartbeat_interval_s"),
        ("sweep.space.lr.low=0.01", r"sweep.space entry for train.lr: give low < high, or choices"),
        ("sweep.space.lr.low=0", r"sweep.space entry for train.lr: log: true needs low > 0"),
    ],
)
def test_bad_values_fail_by_name(override, message):
    with pytest.raises(ConfigError, match=message):
        compose_config(override)
