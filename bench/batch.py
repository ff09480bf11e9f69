"""Batch analysis throughput: the same generated videos (the astronaut's face moving across a 640x480 frame)
labelled by one process, by the local process pool (one worker per core) and by a local Ray instance on this
machine, in one run; prints frames/s and videos/s of each (the best of interleaved rounds) and the speed-up over one
process, and each runner's start-up (workers started, model loaded, timed on warm-up videos) apart.

Run: python -m bench.batch [--videos 8] [--frames 90] [--workers N] [--rounds 3] [--json]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from emotion.config import RealtimeConfig
from emotion.project_files import default_model_dir
from emotion.tracking.model_files import INT8_TFLITE
from realtime.batch import runners
from realtime.batch.videos import Video, list_videos
from realtime.batch.worker import VideoLabeller


def write_videos(folder: Path, count: int, frames: int, prefix: str) -> list[Video]:
    """count MJPG videos of `frames` 640x480 frames, the face sliding and bobbing, each from its own start."""
    face = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (240, 240))
    for i in range(count):
        writer = cv2.VideoWriter(str(folder / f"{prefix}{i}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
        for t in range(frames):
            frame = np.full((480, 640, 3), 90, np.uint8)
            left, top = (20 * i + 4 * t) % 380, 100 + int(60 * np.sin((t + 10 * i) / 15))
            frame[top : top + 240, left : left + 240] = face
            writer.write(frame)
        writer.release()
    return list_videos(str(folder / f"{prefix}*.avi"))


class InProcess:
    """The labeller called in this process, one video after the other: the runners' interface, for one process."""

    capacity = 1

    def __init__(self, model: bytes, cfg: RealtimeConfig, out: str):
        self.labeller = VideoLabeller(model, cfg, out)

    def submit(self, video: Video) -> Video:
        self.row = self.labeller.label(video)
        return video

    def next_done(self, running: list) -> tuple[Video, dict, None]:
        return running[0], self.row, None

    def close(self) -> None:
        pass


def label_set(pool, videos: list[Video]) -> tuple[float, int]:
    """(seconds, frames) to label the videos on a started pool."""
    frames = []

    def count(video, row, error, attempts):
        if error:
            raise RuntimeError(f"{video.uri}: {error}")
        frames.append(row["frames"])

    start = time.perf_counter()
    runners.label_all(videos, pool, 0, count)
    return time.perf_counter() - start, sum(frames)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8, help="videos in the measured set (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=90, help="frames per video (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="pool workers and Ray CPUs (default: "
                        "the cores, %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds; the best of each runner counts "
                        "(default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    import ray

    model, cfg = (default_model_dir() / INT8_TFLITE).read_bytes(), RealtimeConfig()
    started_s, runs, pools = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        videos = write_videos(Path(tmp), args.videos, args.frames, "clip")
        warm_up = write_videos(Path(tmp), args.workers, 2, "warm")
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="WARNING")
        makers = {"1 process": lambda: InProcess(model, cfg, f"{tmp}/one"),
                  f"local pool, {args.workers} workers": lambda: runners.LocalPool(model, cfg, f"{tmp}/pool",
                                                                                    args.workers),
                  f"Ray, local instance, {args.workers} CPUs": lambda: runners.RayPool("auto", model, cfg,
                                                                                       f"{tmp}/ray", len(videos))}
        try:
            for name, make in makers.items():  # started, and every worker's model loaded, on the warm-up videos
                begin = time.perf_counter()
                pools[name] = make()
                label_set(pools[name], warm_up[: pools[name].capacity])
                started_s[name] = time.perf_counter() - begin
            for _ in range(args.rounds):  # interleaved, so a busy spell on a shared machine hits every runner
                for name, pool in pools.items():
                    runs.setdefault(name, []).append(label_set(pool, videos))
        finally:
            for pool in pools.values():
                pool.close()
            ray.shutdown()
    results = {name: (started_s[name], *min(times)) for name, times in runs.items()}  # the best round of each
    base = results["1 process"][1]
    rows = [{"runner": name, "startup_s": round(startup, 2), "seconds": round(seconds, 2), "frames": frames,
             "frames_per_s": round(frames / seconds, 1), "videos_per_s": round(len(videos) / seconds, 3),
             "speedup": round(base / seconds, 2)} for name, (startup, seconds, frames) in results.items()]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{len(videos)} videos x {args.frames} frames (640x480, one face), model {INT8_TFLITE}, "
          f"{os.cpu_count()} cores, best of {args.rounds} rounds:")
    print(f"{'runner':<28}  start-up s  frames/s  videos/s  speed-up")
    for row in rows:
        print(f"{row['runner']:<28}  {row['startup_s']:>10}  {row['frames_per_s']:>8}  {row['videos_per_s']:>8}  "
              f"{row['speedup']:>7}x")


if __name__ == "__main__":
    main()
