"""Tiny synthetic FER2013 sources (folder, zip, csv), composed configs and a temporary MLflow store."""

import itertools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pandas as pd
import pytest

from emotion import config
from emotion.data.labels import CLASS_NAMES, CSV_EMOTION_NAMES
from stages.composition import load_config
from services import mlflow_server, postgres  # noqa: F401  (fixtures: real servers for tests marked services)

ROOT = Path(__file__).resolve().parents[1]
LOCAL = "http://127.0.0.1"  # a base URL for FastAPI's TestClient whose Host the server answers (serve.allowed_hosts)
REAL_DATA = Path(os.environ.get("FER2013_ZIP", ROOT.parent / "shared" / "data" / "fer2013.zip"))
PER_CLASS = 4
# Ctrl-C must reach the processes the tests start (they inherit an ignored SIGINT, as a test run started in the
# background of a non-interactive shell has it, and then no stage could be interrupted the way a person does it).
signal.signal(signal.SIGINT, signal.default_int_handler)

FIGURES: list[str] = []  # what tests of processes and servers counted, printed at the end of the run


def report(line: str) -> None:
    """Print a test's figures (runs, epochs, trials, metrics expected vs found) in the run's summary, pass or fail."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    FIGURES.append(f"{test}: {line.strip()}")


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("figures reported by the tests")
        for line in FIGURES:
            terminalreporter.write_line(line)


PROJECT_FILES = ("emotion", "stages", "conf", "dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore", ".gitignore")


def synthetic_face(rng: np.random.Generator, class_id: int) -> np.ndarray:
    """A random 48x48 uint8 image with a class-dependent bright square, so a model can learn something."""
    img = rng.integers(0, 120, (48, 48), np.uint8)
    row, col = divmod(class_id, 3)
    img[6 + 12 * row : 18 + 12 * row, 6 + 12 * col : 18 + 12 * col] = 230
    return img


def write_kaggle_folder(root: Path, per_class: int = PER_CLASS, seed: int = 0) -> Path:
    """Kaggle layout with per_class synthetic images per class and split."""
    rng = np.random.default_rng(seed)
    for split, (class_id, name), i in itertools.product(("train", "test"), enumerate(CLASS_NAMES), range(per_class)):
        (root / split / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / split / name / f"{split}_{i}.png"), synthetic_face(rng, class_id))
    return root


@pytest.fixture(scope="session")
def kaggle_folder(tmp_path_factory) -> Path:
    return write_kaggle_folder(tmp_path_factory.mktemp("fer"))


@pytest.fixture
def folder_copy(kaggle_folder, tmp_path) -> Path:
    """A writable copy of the synthetic folder, for tests that break it."""
    return Path(shutil.copytree(kaggle_folder, tmp_path / "fer"))


@pytest.fixture(scope="session")
def kaggle_zip(kaggle_folder, tmp_path_factory) -> Path:
    """The synthetic folder zipped with a top-level folder, as archives often are."""
    base = tmp_path_factory.mktemp("zip") / "fer2013"
    return Path(shutil.make_archive(str(base), "zip", kaggle_folder.parent, kaggle_folder.name))


@pytest.fixture(scope="session")
def fer_csv(kaggle_folder, tmp_path_factory) -> Path:
    """The synthetic folder as the original fer2013.csv (emotion,pixels,Usage, original class numbering)."""
    csv_ids = {name: i for i, name in CSV_EMOTION_NAMES.items()}
    rows = []
    for path in sorted(kaggle_folder.rglob("*.png")):
        split, name = path.parts[-3], path.parts[-2]
        pixels = " ".join(map(str, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).ravel()))
        rows.append((csv_ids[name], pixels, "Training" if split == "train" else "PublicTest"))
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    pd.DataFrame(rows, columns=["emotion", "pixels", "Usage"]).to_csv(path, index=False)
    return path


def compose_config(*overrides: str) -> config.Config:
    """conf/ composed by Hydra with overrides, validated into dataclasses."""
    return load_config(overrides)


def stage_command(stage: str, *overrides: str) -> list[str]:
    """A stage's command line as a person types it: python -m stages.<stage> with Hydra overrides."""
    return [sys.executable, "-m", f"stages.{stage}", *overrides]


def run(cmd: list[str], cwd: Path, env_path: str | None = None, tracking_uri: str | None = None) -> str:
    """Run a command with the project's Python first on PATH (and env_path on PYTHONPATH), tracking to tracking_uri
    (default: the project's local store); return its output, or fail the test with it."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if env_path:
        env["PYTHONPATH"] = env_path
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("FER2013_SOURCE", None)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout + done.stderr


def copy_project(root: Path) -> Path:
    """A git + DVC copy of the project's pipeline (code, conf/, dvc.yaml, params.yaml) in root, committed."""
    (root / ".dvc").mkdir()
    for name in PROJECT_FILES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], root)
    return root


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run in an empty folder, so relative outputs (data/, metrics/, mlflow.db) land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FER2013_SOURCE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def cfg(workdir, kaggle_folder) -> config.Config:
    """The default config on the synthetic folder, training for one epoch."""
    return compose_config(f"data.source={kaggle_folder}", "train.epochs=1", "train.batch_size=8")


@pytest.fixture
def mlflow_store(workdir):
    """A temporary SQLite MLflow store (the project's default kind), active for the test."""
    yield f"sqlite:///{workdir}/mlflow.db"
    mlflow.set_tracking_uri(None)


def pytest_collection_modifyitems(items):
    """Tests marked real_data skip with the reason when the FER2013 archive is absent."""
    skip = pytest.mark.skip(reason=f"real FER2013 archive not found at {REAL_DATA}")
    for item in items:
        if "real_data" in item.keywords and not REAL_DATA.exists():
            item.add_marker(skip)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
