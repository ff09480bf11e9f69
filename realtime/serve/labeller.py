"""The model that serves: chosen as the CLI chooses it, described for GET /v1/model, swapped when the registry
moves; images are labelled off the event loop by one recognizer per thread (a stream: its own, as the CLI labels a
camera), all sharing one batched backend."""

import asyncio
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from emotion.config import Config
from emotion.inference.backends import load_backend
from emotion.inference.models import model_folder
from emotion.inference.recognizer import EmotionRecognizer, as_bgr
from emotion.inference.records import FrameResult
from emotion.jsonfiles import read_json
from emotion.tracking.model_files import METRICS, TAGS
from emotion.tracking.store import has_store, tracking_uri
from realtime.serve import uploads
from realtime.serve.batching import BatchedBackend

log = logging.getLogger(__name__)


@dataclass
class ModelChoice:
    """The model options of the command line (at most one of the first three; none: the champion or shipped model)."""

    run_id: str | None = None
    model_uri: str | None = None
    model_dir: str | None = None
    backend: str | None = None  # None: realtime.backend


class Labeller:
    """Labels uploaded images with the chosen model; reload() follows a moved registry alias without a restart."""

    def __init__(self, cfg: Config, choice: ModelChoice):
        self.cfg, self.choice = cfg, choice
        self.folder = self._resolve()
        self.batched = BatchedBackend(self._load(self.folder), cfg.serve.max_batch_faces)
        self.info = describe(self.folder, self.batched.name, cfg)
        self.executor = ThreadPoolExecutor(cfg.serve.threads, thread_name_prefix="label")
        self.local = threading.local()  # a recognizer per thread: OpenCV's cascade is not shared across threads
        self.reloading = asyncio.Lock()

    async def label(self, data: bytes) -> dict:
        """The faces in an uploaded image, as the CLI's --json prints an image; ImageRefused for a bad upload."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._label, data)

    async def stream_labeller(self) -> Callable[[bytes, int, float], Awaitable[dict]]:
        """label() for the frames of one stream, in order: as the CLI labels a camera, faces are detected every
        realtime.detect_every frames labelled and their boxes carried in between."""
        loop = asyncio.get_running_loop()
        recognizer = await loop.run_in_executor(self.executor, EmotionRecognizer, self.batched, self.cfg.realtime)
        labelled = itertools.count()

        def label_frame(data: bytes, index: int, time_s: float) -> dict:
            frame = as_bgr(uploads.decode(data, self.cfg.serve.max_image_pixels), "rgb")
            return recognizer.label_frame(frame, next(labelled), time_s).to_dict() | {"index": index}

        async def label(data: bytes, index: int, time_s: float) -> dict:
            return await loop.run_in_executor(self.executor, label_frame, data, index, time_s)

        return label

    async def reload(self) -> bool:
        """Resolve the model again and swap it in if it changed (requests in flight finish on the old one)."""
        async with self.reloading:
            return await asyncio.to_thread(self._reload)

    def close(self) -> None:
        self.executor.shutdown()
        self.batched.close()

    def _label(self, data: bytes) -> dict:
        image = uploads.decode(data, self.cfg.serve.max_image_pixels)
        if not hasattr(self.local, "recognizer"):
            self.local.recognizer = EmotionRecognizer(self.batched, self.cfg.realtime)
        return FrameResult(0, 0.0, self.local.recognizer.analyze(image, channels="rgb")).to_dict()

    def _resolve(self) -> Path:
        choice = self.choice
        return model_folder(self.cfg.tracking, self.cfg.realtime.cache_dir, choice.run_id, choice.model_uri,
                            choice.model_dir)

    def _load(self, folder: Path):
        backend = load_backend(folder, self.choice.backend or self.cfg.realtime.backend, self.cfg.realtime.test_time)
        log.info("serving %s with %s (test-time views: %s)", folder, backend.name, backend.test_time.scheme)
        return backend

    def _reload(self) -> bool:
        folder = self._resolve()
        if folder == self.folder:
            return False
        backend = self._load(folder)
        self.info = describe(folder, backend.name, self.cfg)
        self.folder, self.batched.backend = folder, backend
        return True


def describe(folder: Path, backend: str, cfg: Config) -> dict:
    """What GET /v1/model says: name and version in the registry (a folder: its name), run id, test accuracy (from
    the run, or the folder's card), folder and backend; None where unknown."""
    info = {"name": folder.name, "version": None, "run_id": None, "test_accuracy": None, "folder": str(folder),
            "backend": backend}
    if folder.parent.resolve() == Path(cfg.realtime.cache_dir).resolve():  # a tracked run, cached under its id
        info |= {"name": None, "run_id": folder.name}
        if has_store(tracking_uri(cfg.tracking)):
            from emotion.tracking import registry, runs  # MLflow: only for a tracked run

            runs.setup(cfg.tracking, create=False)
            info |= registry.run_card(folder.name, cfg.tracking.registered_model)
    else:
        info |= {"run_id": read_json(folder / TAGS).get("exported_from_run"),
                 "test_accuracy": read_json(folder / METRICS).get("accuracy")}
    return info
