"""Where a model comes from: a run id, a registry or runs:/ URI, or a folder (the shipped one when there is no
MLflow store); runs are pulled from MLflow once and kept in a local folder per run id. MLflow (and Keras with it) is
imported only when the cache cannot answer. The one way to resolve a model for the CLI, the API, the server and
batch video: resolve(ModelChoice) -> ResolvedModel."""

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emotion.config import TrackingConfig
from emotion.errors import ModelNotFound
from emotion.inference.backends import Backend, load_backend
from emotion.jsonfiles import read_json
from emotion.project_files import default_model_dir
from emotion.tracking.model_files import ARCHITECTURE, METRICS, TAGS, WEIGHTS, check_model_folder
from emotion.tracking.store import check_run_id, has_store, tracking_uri

log = logging.getLogger(__name__)

CHAMPION_URI = "models:/{name}@champion"



def run_folder(run_id: str, cache_dir: str | Path) -> Path:
    """cache_dir/run_id, for a well-formed run id only: nothing outside the cache is ever loaded or removed."""
    folder = Path(cache_dir) / check_run_id(run_id)
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
    from emotion.tracking import runs  # MLflow: only for a download

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:  # a half-finished download never looks cached
        downloaded = runs.download_model(run_id, tmp)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(str(downloaded), folder)
    log.info("downloaded the model of run %s to %s", run_id, folder)
    return folder


def model_folder(tracking_cfg: TrackingConfig, cache_dir: str | Path, run_id: str | None = None,
                 model_uri: str | None = None, model_dir: str | Path | None = None) -> Path:
    """The local folder of the chosen model: model_dir as it is, else a run (by id, or by URI; default the
    registry's champion, or the shipped model when there is no store) from the cache, downloaded once. A cached run
    needs no tracking store at all."""
    if model_dir is None and not (run_id or model_uri) and not has_store(uri := tracking_uri(tracking_cfg)):
        model_dir = default_model_dir()
        log.warning("no MLflow store at %s: using the shipped model %s", uri.removeprefix("sqlite:///"), model_dir)
    if model_dir is not None:
        return check_model_folder(model_dir)
    if run_id and is_cached(run_id, cache_dir):
        return cached_model_dir(run_id, cache_dir)
    from emotion.tracking import registry, runs  # MLflow: only to resolve or download

    runs.setup(tracking_cfg, create=False)
    uri = model_uri or CHAMPION_URI.format(name=tracking_cfg.registered_model)
    resolved = run_id or registry.resolve_run_id(uri)
    if not run_id:
        log.info("model %s is run %s", uri, resolved)
    return cached_model_dir(resolved, cache_dir)


@dataclass(frozen=True)
class ModelChoice:
    """A model as a command line chooses it: at most one of run id, URI and folder (none: the registry's champion,
    or the shipped model without a store), and the backend (None: realtime.backend)."""

    run_id: str | None = None
    model_uri: str | None = None
    model_dir: str | Path | None = None
    backend: str | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """A chosen model, found on this machine, and what is known of it (None where unknown)."""

    folder: Path
    run_id: str | None = None
    name: str | None = None  # the registered model's name; a folder's own name when it is no tracked run
    version: int | None = None  # its version in the registry
    test_accuracy: float | None = None

    def load(self, backend: str = "auto", test_time: str = "model") -> Backend:
        """The model on the named backend, labelling from its own test-time views (or those named)."""
        return load_backend(self.folder, backend, test_time)


def resolve(choice: ModelChoice, tracking_cfg: TrackingConfig, cache_dir: str | Path,
            registry: bool = False) -> ResolvedModel:
    """The chosen model's local folder (see model_folder) and its run id; with registry, also its registered name,
    version and test accuracy (from the tracking store for a tracked run, else from the folder's card files)."""
    folder = model_folder(tracking_cfg, cache_dir, choice.run_id, choice.model_uri, choice.model_dir)
    if folder.parent.resolve() != Path(cache_dir).resolve():  # a folder, not a tracked run cached under its id
        return ResolvedModel(folder, read_json(folder / TAGS).get("exported_from_run"), folder.name, None,
                             read_json(folder / METRICS).get("accuracy"))
    resolved = ResolvedModel(folder, folder.name)
    if not registry or not has_store(tracking_uri(tracking_cfg)):
        return resolved
    from emotion.tracking import registry as model_registry, runs  # MLflow: only for what the registry says

    runs.setup(tracking_cfg, create=False)
    card = model_registry.run_card(folder.name, tracking_cfg.registered_model)
    return ResolvedModel(folder, folder.name, card["name"], card["version"], card["test_accuracy"])
