"""The model that serves: chosen as the CLI chooses it, described for GET /v1/model, swapped when the registry
moves; images are labelled off the event loop by one recognizer per thread (a stream: its own, as the CLI labels a
camera), all sharing one batched backend."""

import asyncio
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from emotion.config import Config, RealtimeConfig
from emotion.data.preprocess import IMG_SIZE
from emotion.errors import UserError
from emotion.inference import blazeface, image_bytes
from emotion.inference.models import ModelChoice, ResolvedModel, resolve
from emotion.inference.recognizer import EmotionRecognizer, as_bgr
from emotion.inference.records import FrameResult
from emotion.tracking.model_files import INT8, ONNX
from realtime.serve.batching import BatchedBackend
from realtime.serve.detector_onnx import MODEL as BROWSER_DETECTOR
from realtime.serve.metrics import ServerMetrics, TimedDetector

log = logging.getLogger(__name__)


class Busy(UserError):
    """More images wait than serve.max_queue allows: answered 503 with Retry-After."""


class Labeller:
    """Labels uploaded images with the chosen model; reload() follows a moved registry alias without a restart."""

    def __init__(self, cfg: Config, choice: ModelChoice, metrics: ServerMetrics):
        self.cfg, self.choice, self.metrics = cfg, choice, metrics
        self.model = self._resolve()
        self.batched = BatchedBackend(self._load(self.model), cfg.serve.max_batch_faces,
                                      metrics.classification.observe)
        self.info = describe(self.model, self.batched.backend)
        metrics.serving(self.info)
        self.executor = ThreadPoolExecutor(cfg.serve.threads, thread_name_prefix="label")
        self.local = threading.local()  # a recognizer per thread: OpenCV's cascade is not shared across threads
        self.reloading = asyncio.Lock()
        self.queued = 0  # images waiting or being labelled

    async def label(self, data: bytes) -> dict:
        """The faces in an uploaded image, as the CLI's --json prints an image; ImageRefused for a bad upload, Busy
        when serve.max_queue images are already waiting."""
        if self.queued >= self.cfg.serve.max_queue:
            raise Busy(f"{self.queued} images are already waiting (serve.max_queue): try again in a second")
        self.queued += 1
        self.metrics.queue.set(self.queued)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._label, data)
        finally:
            self.queued -= 1
            self.metrics.queue.set(self.queued)

    def recognizer(self) -> EmotionRecognizer:
        """A recognizer on the shared batched backend, its face detection timed."""
        recognizer = EmotionRecognizer(self.batched, self.cfg.realtime)
        recognizer.detector = TimedDetector(recognizer.detector, self.metrics.detection)
        return recognizer

    async def stream_labeller(self) -> Callable[[bytes, int, float], Awaitable[dict]]:
        """label() for the frames of one stream, in order: as the CLI labels a camera, faces are detected every
        realtime.detect_every frames labelled and their boxes carried in between."""
        loop = asyncio.get_running_loop()
        recognizer = await loop.run_in_executor(self.executor, self.recognizer)
        labelled = itertools.count()

        def label_frame(data: bytes, index: int, time_s: float) -> dict:
            frame = as_bgr(image_bytes.decode(data, self.cfg.serve.max_image_pixels), "rgb")
            result = recognizer.label_frame(frame, next(labelled), time_s)
            self.metrics.faces.observe(len(result.faces))
            return result.to_dict() | {"index": index}

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
        image = image_bytes.decode(data, self.cfg.serve.max_image_pixels)
        if not hasattr(self.local, "recognizer"):
            self.local.recognizer = self.recognizer()
        faces = self.local.recognizer.analyze(image, channels="rgb")
        self.metrics.faces.observe(len(faces))
        return FrameResult(0, 0.0, faces).to_dict()

    def _resolve(self) -> ResolvedModel:
        return resolve(self.choice, self.cfg.tracking, self.cfg.realtime.cache_dir, registry=True)

    def _load(self, model: ResolvedModel):
        backend = model.load(self.choice.backend or self.cfg.realtime.backend, self.cfg.realtime.test_time)
        log.info("serving %s with %s (test-time views: %s)", model.folder, backend.name, backend.test_time.scheme)
        return backend

    def _reload(self) -> bool:
        model = self._resolve()
        if model.folder == self.model.folder:
            return False
        backend = self._load(model)
        self.info = describe(model, backend)
        self.metrics.serving(self.info)
        self.model, self.batched.backend = model, backend
        return True


def describe(model: ResolvedModel, backend) -> dict:
    """What GET /v1/model says: name and version in the registry (a folder: its name), run id, test accuracy (from
    the run, or the folder's card), backend and test-time views; None where unknown. Never where the model lies on
    the server's disk."""
    return {"name": model.name, "version": model.version, "run_id": model.run_id, "test_accuracy": model.test_accuracy,
            "backend": backend.name, "test_time": asdict(backend.test_time)}


def browser_model(folder: Path) -> Path | None:
    """The model file the page's in-browser mode runs: the int8 ONNX model, else the float one, if the folder has
    either."""
    return next((folder / name for name in (INT8, ONNX) if (folder / name).exists()), None)


def model_name(info: dict) -> str:
    """The serving model in a few words, for answers: its name and version, or its run id."""
    name = info["name"] or f"run {info['run_id']}"
    return f"{name} version {info['version']}" if info["version"] else name


def browser_settings(realtime: RealtimeConfig) -> dict:
    """What the in-browser mode's detection and crops follow, as the server's do: the detector's input and anchors,
    its score (one pass and no second look there, so realtime.verify_score), the merging, the face box from
    realtime.*, and the classifier's input side."""
    spec = blazeface.MODELS[BROWSER_DETECTOR]
    return {"input_px": spec.input_px, "strides": list(spec.strides), "anchors_per_cell": spec.anchors_per_layer,
            "min_score": realtime.verify_score, "nms_iou": blazeface.NMS_IOU,
            "raw_score_limit": blazeface.RAW_SCORE_LIMIT, "box_scale": realtime.box_scale,
            "box_shift": realtime.box_shift, "align_min_deg": realtime.align_min_deg if realtime.align else None,
            "face_px": IMG_SIZE}
