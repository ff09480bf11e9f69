"""A run's model (model.json + weights) pulled from MLflow once and kept in a local folder per run id."""

import logging
import shutil
import tempfile
from pathlib import Path

from emotion import tracking
from emotion.errors import ModelNotFound
from emotion.model_io import ARCHITECTURE, WEIGHTS

log = logging.getLogger(__name__)


def run_folder(run_id: str, cache_dir: str | Path) -> Path:
    """cache_dir/run_id, for a well-formed run id only: nothing outside the cache is ever loaded or removed."""
    folder = Path(cache_dir) / tracking.check_run_id(run_id)
    if not folder.resolve().is_relative_to(Path(cache_dir).resolve()):
        raise ModelNotFound(f"{folder} lies outside the model cache {cache_dir}: remove that link")
    return folder


def is_cached(run_id: str, cache_dir: str | Path) -> bool:
    """Whether the run's model files are already in the local cache."""
    return all((run_folder(run_id, cache_dir) / name).exists() for name in (ARCHITECTURE, WEIGHTS))


def cached_model_dir(run_id: str, cache_dir: str | Path) -> Path:
    """Local folder with the run's model files, downloaded through MLflow unless already cached."""
    folder = run_folder(run_id, cache_dir)
    if is_cached(run_id, cache_dir):
        log.info("using cached model of run %s in %s", run_id, folder)
        return folder
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:  # a half-finished download never looks cached
        downloaded = tracking.download_model(run_id, tmp)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(str(downloaded), folder)
    log.info("downloaded the model of run %s to %s", run_id, folder)
    return folder
