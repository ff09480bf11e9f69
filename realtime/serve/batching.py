"""The faces of concurrent requests classified together: one thread runs a batch of every face waiting."""

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np


class BatchedBackend:
    """A backend many threads call at once: predict() queues the faces and waits for their slice of a batch.

    `backend` may be replaced at any time (a model reload): batches already running finish on the old one.
    """

    def __init__(self, backend, max_faces: int, observe: Callable[[float], None] = lambda seconds: None):
        self.backend, self.max_faces, self.observe = backend, max_faces, observe  # observe: each batch's seconds
        self.waiting: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._classify_batches, name="classify", daemon=True)
        self.thread.start()

    @property
    def name(self) -> str:
        return self.backend.name

    def predict(self, faces_u8: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) for uint8 faces (N, 48, 48), classified in a batch with other callers' faces."""
        future: Future = Future()
        self.waiting.put((faces_u8, future))
        return future.result()

    def close(self) -> None:
        """Stop the batching thread once the faces queued before are classified."""
        self.waiting.put(None)
        self.thread.join()

    def _classify_batches(self) -> None:
        while (item := self.waiting.get()) is not None:
            batch, count = [item], len(item[0])
            while count < self.max_faces:
                try:
                    item = self.waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # close(): stop after this batch
                    self.waiting.put(None)
                    break
                batch.append(item)
                count += len(item[0])
            self._classify(batch)

    def _classify(self, batch: list[tuple[np.ndarray, Future]]) -> None:
        start = time.perf_counter()
        try:
            probs = self.backend.predict(np.concatenate([faces for faces, _ in batch]))
            self.observe(time.perf_counter() - start)
        except Exception as err:  # noqa: BLE001 - handed to the callers, which raise it in their own threads
            for _, future in batch:
                future.set_exception(err)
            return
        sizes = [len(faces) for faces, _ in batch]
        for (_, future), part in zip(batch, np.split(probs, np.cumsum(sizes)[:-1])):
            future.set_result(part)
