"""Every stage's --help says what the stage does and names its main options, and starts without TensorFlow, Keras
or MLflow."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT, compose_config
from emotion import config
from emotion.errors import ConfigError, TrainingInterrupted, user_errors_exit
from test_realtime import NO_KERAS

HYDRA_STAGES = {  # stage: options its help must name
    "index": ["data.source", "data.max_per_class", "data.val_fraction"],
    "train": ["experiment", "model", "train.epochs", "train.resume"],
    "evaluate": ["evaluate.model_dir", "evaluate.register", "evaluate.batch_size"],
    "train_offline": ["+export_dir", "experiment"],
    "sweep": ["sweep.n_trials", "sweep.storage", "sweep.study", "sweep.pruner", "train.epochs"],
}
ARGPARSE_STAGES = {"export_run": ["run_id", "folder"], "import_run": ["folder", "--run-file"], "params": ["--output"],
                   "ensemble": ["folder", "members"], "calibrate": ["folder", "out", "--class-bias", "--source"]}


def stage_help(stage: str) -> str:
    """What `python -m stages.<stage> --help` prints; fails if it imported TensorFlow, Keras or MLflow."""
    code = (f"import runpy, sys\nsys.argv = ['{stage}', '--help']\ntry:\n"
            f"    runpy.run_module('stages.{stage}', run_name='__main__')\nexcept SystemExit:\n    pass\n{NO_KERAS}")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("stage", HYDRA_STAGES)
def test_hydra_stage_help_names_its_purpose_and_only_options_that_exist(stage):
    text = stage_help(stage)
    assert f"python -m stages.{stage}: " in text  # its own header (conf/hydra/help/<stage>.yaml), not Hydra's
    named = re.findall(r"^ +(\+?[a-z_.]+)=", text, re.MULTILINE)
    assert set(HYDRA_STAGES[stage]) <= set(named)
    keys = set(config.flatten(config.to_dict(compose_config())))
    groups = {path.name for path in (ROOT / "conf").iterdir() if path.is_dir() and path.name != "hydra"}
    unknown = [name for name in named if name not in keys | groups and not name.startswith("+")]
    assert not unknown, f"--help names options conf/ does not have: {unknown}"


@pytest.mark.parametrize("stage", ARGPARSE_STAGES)
def test_argparse_stage_help_explains_every_argument(stage):
    text = stage_help(stage)
    assert f"usage: python -m stages.{stage}" in text
    for name in ARGPARSE_STAGES[stage]:
        assert re.search(rf"^  {name}( [A-Z_]+)?\s+\S", text, re.MULTILINE), f"{name} has no help text"


@pytest.mark.parametrize("raised, status", [
    (ConfigError("model.test_time='x': use one of plain, flip, crops"), "error: model.test_time='x': use one of"),
    (KeyboardInterrupt(), 130), (TrainingInterrupted("stopped after epoch 2: run it again"), 130)])
def test_every_command_ends_a_user_error_in_one_line_and_ctrl_c_with_130(raised, status, capsys):
    def command():
        raise raised

    with pytest.raises(SystemExit) as stop:
        user_errors_exit(command)()
    code = stop.value.code
    assert code == status if isinstance(status, int) else code.startswith(status)
    if isinstance(raised, TrainingInterrupted):
        assert capsys.readouterr().err == "error: stopped after epoch 2: run it again\n"


def test_importing_tensorflow_through_the_library_prints_nothing():
    code = "import emotion.training.trainer, keras; keras.ops.sum(keras.ops.ones(2))"
    err = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stderr
    assert err == "", err  # absl's preamble and the oneDNN and CPU-feature notes are TensorFlow's, not ours

