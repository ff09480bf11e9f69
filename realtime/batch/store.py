"""A batch's output, on a local folder or any filesystem pyarrow writes to (s3://, gs://, hdfs://): Parquet datasets
partitioned by video (frames/video=ID/, tracks/video=ID/, videos/video=ID/), summary.parquet and failures.parquet.

A video counts as done once its videos/ row exists; it is written last (whole, or not at all), so a video interrupted
half-way has none and is labelled again from scratch."""

from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq

from emotion.data.labels import CLASS_NAMES
from emotion.errors import UserError

# --json's frame record: {"index", "time_s", "faces": [{"box": [x, y, w, h], "label", "confidence", "probs"}]}
FACE = pa.struct([("box", pa.list_(pa.int64())), ("label", pa.string()), ("confidence", pa.float64()),
                  ("probs", pa.struct([(name, pa.float64()) for name in CLASS_NAMES]))])
FRAMES = pa.schema([("index", pa.int64()), ("time_s", pa.float64()), ("faces", pa.list_(FACE))])
# --summary's table
TRACKS = pa.schema([("track", pa.int64()), ("emotion", pa.string()), ("seconds", pa.float64()),
                    ("share", pa.float64())])
# one row per video (its id is the partition): counts and the share of all its faces' frames in each emotion
VIDEOS = pa.schema([("uri", pa.string()), ("frames", pa.int64()), ("faces", pa.int64()),
                    ("tracks", pa.int64()), *[(name, pa.float64()) for name in CLASS_NAMES]])
FAILURES = pa.schema([("video", pa.string()), ("uri", pa.string()), ("attempts", pa.int64()), ("error", pa.string())])
PART = "part-0.parquet"
WRITE_EVERY = 1000  # frames per Parquet row group: a long video is never held in memory whole


class Store:
    """The output location of a batch; the driver and every worker open their own."""

    def __init__(self, out: str):
        self.location = out if "://" in out else str(Path(out).resolve())  # as workers elsewhere must be given it
        self.fs, self.root = pyarrow.fs.FileSystem.from_uri(self.location)
        if self.fs.get_file_info(self.root).type == pyarrow.fs.FileType.File:
            raise UserError(f"--out {out} is a file: name a folder for the results (it is made if missing)")

    def done(self) -> set[str]:
        """The ids of the videos labelled completely."""
        found = self.fs.get_file_info(pyarrow.fs.FileSelector(f"{self.root}/videos", allow_not_found=True,
                                                              recursive=True))
        return {PurePosixPath(info.path).parent.name.removeprefix("video=") for info in found if info.base_name == PART}

    def clear(self, video_id: str) -> None:
        """Remove whatever an earlier, unfinished attempt wrote for the video."""
        for dataset in ("videos", "tracks", "frames"):
            folder = f"{self.root}/{dataset}/video={video_id}"
            if self.fs.get_file_info(folder).type != pyarrow.fs.FileType.NotFound:
                self.fs.delete_dir(folder)

    @contextmanager
    def frame_writer(self, video_id: str):
        """A function that takes the video's frame records (FrameResult.to_dict()) in order."""
        pending: list[dict] = []
        with pq.ParquetWriter(self._part("frames", video_id), FRAMES, filesystem=self.fs) as writer:
            def write(record: dict) -> None:
                pending.append(record)
                if len(pending) == WRITE_EVERY:
                    writer.write_table(pa.Table.from_pylist(pending, FRAMES))
                    pending.clear()

            yield write
            writer.write_table(pa.Table.from_pylist(pending, FRAMES))

    def write_tracks(self, video_id: str, rows: list[dict]) -> None:
        pq.write_table(pa.Table.from_pylist(rows, TRACKS), self._part("tracks", video_id), filesystem=self.fs)

    def mark_done(self, video_id: str, row: dict) -> None:
        """Write the video's row under a hidden name, then move it in place: it exists whole or not at all."""
        part = self._part("videos", video_id)
        partial = str(PurePosixPath(part).with_name(f".{PART}"))  # datasets skip names starting with "."
        pq.write_table(pa.Table.from_pylist([row], VIDEOS), partial, filesystem=self.fs)
        self.fs.move(partial, part)

    def write_summary(self) -> int:
        """summary.parquet: the rows of every video done, by URI; returns their number."""
        schema = pa.schema([("video", pa.string()), *VIDEOS])
        table = self.read("videos").sort_by("uri") if self.done() else schema.empty_table()
        pq.write_table(table.select(schema.names).cast(schema), f"{self.root}/summary.parquet", filesystem=self.fs)
        return table.num_rows

    def write_failures(self, rows: list[dict]) -> None:
        """failures.parquet: the videos of the last run that could not be labelled, with the error."""
        pq.write_table(pa.Table.from_pylist(rows, FAILURES), f"{self.root}/failures.parquet", filesystem=self.fs)

    def read(self, dataset: str) -> pa.Table:
        """A whole dataset (frames, tracks, videos) with its video column, or summary / failures."""
        if dataset in ("summary", "failures"):
            return pq.read_table(f"{self.root}/{dataset}.parquet", filesystem=self.fs)
        return pq.read_table(f"{self.root}/{dataset}", filesystem=self.fs, partitioning="hive")

    def _part(self, dataset: str, video_id: str) -> str:
        folder = f"{self.root}/{dataset}/video={video_id}"
        self.fs.create_dir(folder)
        return f"{folder}/{PART}"
