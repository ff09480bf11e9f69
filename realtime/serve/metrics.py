"""What GET /metrics says, in Prometheus' text format: requests by route and status, their latency, faces per image,
face detection and classification time, the labelling queue, open streams, and the model that serves."""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

SECONDS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServerMetrics:
    """One server's metrics, in a registry of its own (several apps in one process keep theirs apart)."""

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
        self.queue = Gauge("fer_queue_depth", "uploaded images waiting or being labelled", **kind)
        self.streams = Gauge("fer_open_streams", "open WebSocket streams", **kind)
        self.model = Info("fer_model", "the model that serves", **kind)

    def serving(self, info: dict) -> None:
        """The model's name, version, run id and backend as labels of fer_model_info."""
        self.model.info({key: "" if info[key] is None else str(info[key])
                         for key in ("name", "version", "run_id", "backend")})

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
