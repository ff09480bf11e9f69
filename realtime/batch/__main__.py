"""Label every video of an archive: `python -m realtime.batch INPUT --out results/` (INPUT: a folder, a quoted glob,
or a text file with one video path or URI per line); installed, the same is `fer-batch`.

Writes per-frame face records (as the webcam CLI's --json) and per-track summaries (as its --summary) as Parquet
datasets partitioned by video: OUT/frames/video=ID/, OUT/tracks/video=ID/, OUT/videos/video=ID/ (one row per video),
plus OUT/summary.parquet over all videos and OUT/failures.parquet (the videos that could not be labelled, with the
error). Runs on a local process pool (all cores), or on a Ray cluster with --ray ADDRESS (or auto). The model is
chosen as in the webcam CLI and runs on LiteRT or ONNX Runtime. Run again with the same --out to label only what is
not done.
"""

import argparse
import logging
import time

from emotion.errors import UserError
from realtime import options
from stages.composition import load_config

log = logging.getLogger("realtime.batch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m realtime.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="a folder of videos (searched recursively), a quoted glob, or a text file "
                        "listing video paths or URIs (s3://, gs://, hdfs://, file://), one per line")
    parser.add_argument("--out", required=True, help="output folder, or a URI (s3://bucket/results) that every "
                      "worker can write to")
    options.add_model_options(parser)
    parser.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    parser.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: the address ray start --head prints "
                        "(host:6379), or auto for the cluster of this machine")
    parser.add_argument("--retries", type=int, default=1, help="tries more for a video that fails (default 1)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. realtime.detect_every=3")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1 or args.retries < 0:
        parser.error("--workers must be >= 1 and --retries >= 0")
    return args


def model_file(cfg, args: argparse.Namespace):
    """The chosen model's file (by default its int8 TFLite or ONNX model, when the folder has one), checked to load,
    with its test-time views."""
    from emotion.inference.backends import LiteRTBackend, ModelFile, OnnxBackend
    from emotion.inference.models import resolve

    model = resolve(options.model_choice(args), cfg.tracking, cfg.realtime.cache_dir)
    backend = model.load(args.backend or cfg.realtime.backend, cfg.realtime.test_time)
    if not isinstance(backend, LiteRTBackend | OnnxBackend):
        raise UserError(f"the batch tool runs model files, not --backend {backend.name}: use --backend litert-int8, "
                        "onnx-int8 or onnx")
    log.info("model %s (%s, test-time views: %s)", backend.path, backend.name, backend.test_time.scheme)
    return ModelFile(backend.path.read_bytes(), backend.test_time)


def run(args: argparse.Namespace) -> int:
    """Label the videos not yet done in the output; 1 if some could not be labelled."""
    from realtime.batch import runners
    from realtime.batch.store import Store
    from realtime.batch.videos import list_videos

    cfg = load_config(args.overrides)
    videos = list_videos(args.input)
    store = Store(args.out)
    done = store.done()
    todo = [video for video in videos if video.id not in done]
    log.info("%d videos, %d already done in %s", len(videos), len(videos) - len(todo), args.out)
    failures, totals, start = [], {"frames": 0, "videos": 0}, time.perf_counter()
    if todo:
        model = model_file(cfg, args)
        pool = (runners.RayPool(args.ray, model, cfg.realtime, store.location, len(todo)) if args.ray else
                runners.LocalPool(model, cfg.realtime, store.location, args.workers))

        def report(video, row, error, attempts):
            totals["videos"] += 1
            totals["frames"] += row["frames"] if row else 0
            outcome = f"{row['frames']} frames, {row['faces']} faces" if row else f"FAILED ({attempts} tries): {error}"
            log.info("[%d/%d] %s: %s", totals["videos"], len(todo), video.uri, outcome)

        try:
            failures = runners.label_all(todo, pool, args.retries, report)
        finally:
            pool.close()
    store.write_failures(failures)
    labelled = store.write_summary()
    seconds = max(time.perf_counter() - start, 1e-6)
    log.info("labelled %d videos (%d frames) in %.1f s: %.1f frames/s, %.2f videos/s; %d failed; %d videos in %s",
             len(todo) - len(failures), totals["frames"], seconds, totals["frames"] / seconds,
             (len(todo) - len(failures)) / seconds, len(failures), labelled, args.out)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> None:
    options.run_command(lambda: run(parse_args(argv)))  # Ctrl-C: the videos done so far are kept; the next run labels the rest


if __name__ == "__main__":
    main()
