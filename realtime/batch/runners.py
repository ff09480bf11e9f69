"""Where videos are labelled: a local process pool or the actors of a Ray cluster, each worker loading the model
once; a video that fails is tried again, then reported, never dropped."""

import logging
import multiprocessing
import os
import socket
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from emotion.config import RealtimeConfig
from emotion.errors import UserError, first_line
from emotion.inference.backends import ModelFile
from realtime.batch.videos import Video

log = logging.getLogger(__name__)

RAY_HELP = "pip install 'fer-pipeline[ray]' (or pip install ray==2.60.0)"


def one_line(err: BaseException) -> str:
    """An error as the failures table records it: the message, with the type unless it is a UserError."""
    cause = getattr(err, "cause", None) or err  # Ray wraps a worker's exception; .cause is the original
    return first_line(cause) if isinstance(cause, UserError) else f"{type(cause).__name__}: {first_line(cause)}"


def label_all(videos: list[Video], pool, retries: int, report: Callable[[Video, dict | None, str | None, int], None]
              ) -> list[dict]:
    """Label the videos on the pool, trying a failed one `retries` more times; report(video, row, error, attempts)
    after each; returns the failures (video, uri, attempts, error)."""
    queue, running, failures = deque((video, 1) for video in videos), {}, []
    while queue or running:
        while queue and len(running) < pool.capacity:
            video, attempt = queue.popleft()
            running[pool.submit(video)] = video, attempt
        handle, row, error = pool.next_done(list(running))
        video, attempt = running.pop(handle)
        if error is not None and attempt <= retries:
            log.warning("%s failed (%s); trying again", video.uri, error)
            queue.append((video, attempt + 1))
            continue
        report(video, row, error, attempt)
        if error is not None:
            failures.append({"video": video.id, "uri": video.uri, "attempts": attempt, "error": error})
    return failures


class LocalPool:
    """Worker processes on this machine (default: one per core), each with its own model."""

    def __init__(self, model: ModelFile, cfg: RealtimeConfig, out: str, workers: int | None = None):
        from realtime.batch import worker

        self.capacity = workers or os.cpu_count() or 1
        self.make = lambda: ProcessPoolExecutor(
            self.capacity, multiprocessing.get_context("spawn"),  # no fork of a process holding threads (ONNX, Ray)
            initializer=worker.start_process, initargs=(model, cfg, out))
        self.label = worker.label_in_process
        self.executor = self.make()

    def submit(self, video: Video) -> Future:
        try:
            return self.executor.submit(self.label, video)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh, its video is retried
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self.make()
            return self.executor.submit(self.label, video)

    def next_done(self, running: list[Future]) -> tuple[Future, dict | None, str | None]:
        future = next(iter(wait(running, return_when=FIRST_COMPLETED).done))
        if future.exception() is not None:
            return future, None, one_line(future.exception())
        return future, future.result(), None

    def close(self) -> None:
        self.executor.shutdown(cancel_futures=True)


class RayPool:
    """One actor per CPU of a Ray cluster (at most one per video), each loading the model once; the workers write
    the output themselves, so it must be a location they all reach (shared folder, s3://, gs://)."""

    def __init__(self, address: str, model: ModelFile, cfg: RealtimeConfig, out: str, videos: int):
        self.ray, self.connected = connect(address)
        from realtime.batch.worker import VideoLabeller

        labeller = self.ray.remote(num_cpus=1)(VideoLabeller)
        model_ref = self.ray.put(model)  # sent to the object store once, not once per actor
        self.start = lambda: labeller.remote(model_ref, cfg, out)
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.idle = [self.start() for _ in range(max(1, min(cpus, videos)))]
        self.capacity = len(self.idle)
        self.busy = {}

    def submit(self, video: Video):
        actor = self.idle.pop()
        ref = actor.label.remote(video)
        self.busy[ref] = actor
        return ref

    def next_done(self, running: list) -> tuple[object, dict | None, str | None]:
        [ref], _ = self.ray.wait(running, num_returns=1)
        actor = self.busy.pop(ref)
        try:
            row, error = self.ray.get(ref), None
        except self.ray.exceptions.RayActorError as err:  # its process or node died: a new actor takes its place
            actor, row, error = self.start(), None, one_line(err)
        except self.ray.exceptions.RayError as err:
            row, error = None, one_line(err)
        self.idle.append(actor)
        return ref, row, error

    def close(self) -> None:
        for actor in self.idle + list(self.busy.values()):
            self.ray.kill(actor)
        if self.connected:
            self.ray.shutdown()


def connect(address: str):
    """The ray module, connected to the cluster at address (host:port, ray://host:port or auto) unless this process
    already is (a test, a notebook), and whether it connected here."""
    try:
        import ray
    except ImportError as err:
        raise UserError(f"--ray needs Ray, which is not installed: {RAY_HELP}") from err
    if ray.is_initialized():
        return ray, False
    if address != "auto":
        check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as err:
        raise UserError(f"cannot connect to the Ray cluster at {address} ({one_line(err)}): start one with "
                        "ray start --head and pass the address it prints") from err
    return ray, True


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, not after Ray's minute of retries, when nothing listens at address."""
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as err:
        raise UserError(f"cannot connect to the Ray cluster at {address} ({err}): check the address (host:port, as "
                        "ray start --head prints it) or use --ray auto on a cluster node") from err

