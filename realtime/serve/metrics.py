"""What GET /metrics says, in Prometheus' text format: requests by route and status, their latency, faces per image,
face detection and classification time, the labelling queue, open streams, and the model that serves. With
serve.workers > 1, each worker writes its figures to files in PROMETHEUS_MULTIPROC_DIR (set before the workers start)
and whichever worker answers /metrics adds them all up."""

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
MODEL_LABELS = ("name", "version", "run_id", "backend")
SECONDS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServerMetrics:
    """One server's metrics, in a registry of its own (several apps in one process keep theirs apart); gauges of
    several workers are summed (queue, streams) or the largest taken (the model's info), over the live workers."""

    def __init__(self):
        self.registry = CollectorRegistry()
        kind = {"registry": self.registry}
        self.requests = Counter("fer_requests", "HTTP requests answered, by route and status", ["route", "status"],
                                **kind)
        self.latency = Histogram("fer_request_seconds", "time to answer an HTTP request", ["route"],
                                 buckets=SECONDS, **kind)
        self.faces = Histogram("fer_faces_per_image", "faces found in an uploaded image or stream frame",
                               buckets=(0, 1, 2, 3, 5, 10, 20, 50), **kind)
        self.detection = Histogram("fer_detection_seconds", "face detection time per image", buckets=SECONDS, **kind)
        self.classification = Histogram("fer_classification_seconds", "time to classify one batch of faces",
                                        buckets=SECONDS, **kind)
        self.queue = Gauge("fer_queue_depth", "uploaded images waiting or being labelled", multiprocess_mode="livesum",
                           **kind)
        self.streams = Gauge("fer_open_streams", "open WebSocket streams", multiprocess_mode="livesum", **kind)
        # an info metric as a gauge: Prometheus' Info type has no multiprocess mode
        self.model = Gauge("fer_model_info", "the model that serves (1; 0: served before a reload)", MODEL_LABELS,
                           multiprocess_mode="livemax", **kind)
        self.served = None

    def serving(self, info: dict) -> None:
        """The model's name, version, run id and backend as labels of fer_model_info (the one served before: 0)."""
        if self.served:
            self.model.labels(*self.served).set(0)
        self.served = tuple("" if info[key] is None else str(info[key]) for key in MODEL_LABELS)
        self.model.labels(*self.served).set(1)

    def render(self) -> bytes:
        if not os.environ.get(MULTIPROCESS_DIR):
            return generate_latest(self.registry)
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)
        return generate_latest(workers)

    def close(self) -> None:
        """A worker that stops leaves the live gauges (its counts stay in the totals)."""
        if os.environ.get(MULTIPROCESS_DIR):
            multiprocess.mark_process_dead(os.getpid())


class TimedDetector:
    """A face detector whose every call is observed in a histogram."""

    def __init__(self, detector, histogram: Histogram):
        self.detector, self.histogram = detector, histogram

    def detect(self, frame):
        start = time.perf_counter()
        try:
            return self.detector.detect(frame)
        finally:
            self.histogram.observe(time.perf_counter() - start)
