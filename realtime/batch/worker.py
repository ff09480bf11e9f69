"""One video labelled into the output: what a local worker process or a Ray actor runs, its model loaded once."""

import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import PurePosixPath

import cv2

from emotion.config import RealtimeConfig
from emotion.data.labels import CLASS_NAMES
from emotion.errors import DataError
from emotion.inference.backends import ModelFile, file_backend
from emotion.inference.recognizer import EmotionRecognizer
from emotion.inference.summary import EmotionSummary
from realtime.batch.store import Store
from realtime.batch.videos import Video


class VideoLabeller:
    """Labels videos with one model file (its bytes and views: the file need not exist where this runs) into one output."""

    def __init__(self, model: ModelFile, cfg: RealtimeConfig, out: str):
        cv2.setNumThreads(1)  # a video per core: threads inside a worker (OpenCV's, the decoder's, the model
        # runtime's, already 1) would only contend with the other workers
        self.recognizer = EmotionRecognizer(file_backend(model), cfg)
        self.store = Store(out)

    def label(self, video: Video) -> dict:
        """Write the video's frame records and track summary, then its row (marking it done); returns the row.
        Raises if the video cannot be read, leaving nothing of it behind."""
        self.store.clear(video.id)
        try:
            summary = EmotionSummary()
            with local_copy(video.uri) as path, self.store.frame_writer(video.id) as write:
                for result in self.recognizer.label_video(path, threads=1):
                    summary.add(result)
                    write(result.to_dict())
            self.store.write_tracks(video.id, summary.table().to_dict("records"))
            row = video_row(video, summary)
            self.store.mark_done(video.id, row)
        except DataError as err:  # a video that breaks half-way: none of it is kept, as the failure says
            self.store.clear(video.id)
            raise DataError(f"{err} (nothing of it kept: a video counts only whole)") from err
        except BaseException:
            self.store.clear(video.id)
            raise
        return row


def video_row(video: Video, summary: EmotionSummary) -> dict:
    labels = Counter(label for _, label in summary.rows)
    faces = len(summary.rows)
    return {"uri": video.uri, "frames": len(summary.times), "faces": faces, "tracks": len(summary.last_boxes),
            **{name: round(labels[name] / faces, 4) if faces else 0.0 for name in CLASS_NAMES}}


@contextmanager
def local_copy(uri: str):
    """A local path for the video: itself, or a temporary copy of a remote file (OpenCV reads local files)."""
    if "://" not in uri:
        yield uri
        return
    import pyarrow.fs

    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    with tempfile.NamedTemporaryFile(suffix=PurePosixPath(path).suffix) as copy, fs.open_input_stream(path) as remote:
        shutil.copyfileobj(remote, copy)
        copy.flush()
        yield copy.name


# the local pool's worker processes: one labeller each, made once by the pool's initializer
_labeller: VideoLabeller | None = None


def start_process(model: ModelFile, cfg: RealtimeConfig, out: str) -> None:
    global _labeller
    _labeller = VideoLabeller(model, cfg, out)


def label_in_process(video: Video) -> dict:
    return _labeller.label(video)
