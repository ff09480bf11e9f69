"""Label faces with emotions live: `python -m realtime.webcam --run-id RUN_ID` (or --video FILE / --image PATH...);
installed, the same is `fer-webcam`.

Pulls the run's model (model.json + weights) from MLflow once, caches it per run id (without an MLflow store: the
shipped model), detects faces with BlazeFace (realtime.detector=haar: OpenCV's Haar cascade) and classifies every
face of a frame in one batch. `q` or Esc quits the window.
"""

import argparse
import json
import logging
import re
import time
from pathlib import Path

import cv2

from emotion.errors import UserError
from emotion.inference import inputs
from emotion.inference.recognizer import EmotionRecognizer
from emotion.inference.records import FrameResult
from realtime import options, overlay
from stages.composition import load_config

log = logging.getLogger("realtime.webcam")

WINDOW = "FER: q or Esc quits"
QUIT_KEYS = {ord("q"), 27}
GUI_HELP = (
    "this OpenCV has no GUI (opencv-python-headless): pip uninstall -y opencv-python-headless && "
    "pip install -e '.[gui]', or run with --headless (add --output FILE or --json to see results)"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m realtime.webcam", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_model_options(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    source.add_argument("--video", help="label a video file instead of the camera")
    source.add_argument("--image", nargs="+", metavar="PATH", help="label images: files, folders or globs; several "
                        "stream one JSON line each (with --json), in one process")
    parser.add_argument("--output", help="write the annotated video (.mp4/.avi) or image here (a folder for several "
                        "images)")
    parser.add_argument("--headless", action="store_true", help="show no window (servers, tests)")
    parser.add_argument("--json", action="store_true", help="print one JSON line per frame to stdout")
    parser.add_argument("--summary", help="video/camera: write the share of time in each emotion per face to this "
                        "CSV (and a plot beside it, .png)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. realtime.scale_factor=1.2")
    return parser.parse_args(argv)


def check_gui(headless: bool) -> None:
    if not headless and re.search(r"GUI:\s+NONE", cv2.getBuildInformation()):
        raise UserError(GUI_HELP)


def run(args: argparse.Namespace, capture_factory=None) -> int:
    """Label the chosen input; capture_factory opens cameras (cv2.VideoCapture unless a test fakes one)."""
    cfg = load_config(args.overrides)
    check_gui(args.headless)
    if args.image:  # inputs are checked before the model loads: a typo costs no wait
        paths = inputs.image_paths(args.image)
    elif args.video:
        frames, release, fps = inputs.video_frames(args.video)
    else:
        (frames, release), fps = inputs.camera_frames(args.camera, capture_factory or cv2.VideoCapture), 30.0
    try:
        recognizer = EmotionRecognizer.from_choice(options.model_choice(args), cfg.realtime, cfg.tracking)
    except BaseException:
        if not args.image:
            release()
        raise
    log.info("inference backend: %s, test-time views: %s", recognizer.backend.name,
             recognizer.backend.test_time.scheme)
    if args.image:
        return label_images(args, paths, recognizer)
    return label_stream(args, recognizer, frames, release, fps)


def label_stream(args: argparse.Namespace, recognizer: EmotionRecognizer, frames, release, fps: float) -> int:
    """Label, show, write and summarise frames until they end or the user quits; an interrupt loses nothing."""
    if args.summary:
        from emotion.inference.summary import EmotionSummary  # pandas and matplotlib: only when a summary is asked for
    writer, summary = None, EmotionSummary() if args.summary else None
    labelled, faces, start = 0, 0, time.perf_counter()
    fps_shown, last = None, start
    try:
        for index, (frame, time_s) in enumerate(frames):
            if args.max_frames is not None and index >= args.max_frames:
                break
            result = recognizer.label_frame(frame, index, time_s)
            labelled, faces = labelled + 1, faces + len(result.faces)
            emit(result, args.json)
            if summary:
                summary.add(result)
            overlay.draw(frame, result)
            if args.output:
                writer = writer or video_writer(args.output, fps, frame.shape)
                writer.write(frame)
            if not args.headless:
                now = time.perf_counter()
                instant = 1 / max(now - last, 1e-6)
                fps_shown, last = instant if fps_shown is None else 0.9 * fps_shown + 0.1 * instant, now
                cv2.imshow(WINDOW, overlay.draw_fps(frame, fps_shown))  # after writing: saved frames carry no FPS
                if cv2.waitKey(1) & 0xFF in QUIT_KEYS:
                    break
    finally:
        seconds, written = time.perf_counter() - start, []
        release()
        if writer is not None:
            writer.release()
            written.append(args.output)
        if not args.headless:
            cv2.destroyAllWindows()
        if summary and summary.times:
            summary.write(args.summary)
            written.append(f"{args.summary} (+ .png)")
        log.info("labelled %d frames, %d faces, %.1f FPS%s", labelled, faces, labelled / max(seconds, 1e-6),
                 " -> " + ", ".join(written) if written else "")
    return 0


def label_images(args: argparse.Namespace, paths: list[Path], recognizer: EmotionRecognizer) -> int:
    """Label each image; one image fails loudly, many go on past an unreadable or faceless one (exit 1 if any
    could not be read)."""
    single, failed = len(paths) == 1, 0
    if args.output and not single:
        Path(args.output).mkdir(parents=True, exist_ok=True)
    for path in paths:
        try:
            image = inputs.read_image(path)
        except UserError as err:
            if single:
                raise
            log.error("error: %s", err)
            failed += 1
            continue
        result = recognizer.label_frame(image, 0, 0.0)
        emit(result, args.json, path)
        if not result.faces:
            message = (f"no face found in {path}: use a photo with a frontal face, or lower "
                       "realtime.min_face_fraction / realtime.min_neighbors")
            if single:
                raise UserError(message)
            log.warning("%s", message)
        overlay.draw(image, result)
        target = args.output if single else Path(args.output or "") / path.name
        if args.output and not cv2.imwrite(str(target), image):
            raise UserError(f"cannot write {target}: use a .png or .jpg name in a writable folder")
        if single and not args.headless:
            cv2.imshow(WINDOW, image)
            cv2.waitKey(0)
            cv2.destroyAllWindows()
    return 1 if failed else 0


def emit(result: FrameResult, as_json: bool, path: Path | None = None) -> None:
    if as_json:
        record = result.to_dict() if path is None else {"path": str(path), **result.to_dict()}
        print(json.dumps(record), flush=True)


def video_writer(path: str, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.lower().endswith(".mp4") else "MJPG"))
    writer = cv2.VideoWriter(path, fourcc, fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise UserError(f"cannot write video {path}: use an .mp4 or .avi name in a writable folder")
    return writer


def main(argv: list[str] | None = None) -> None:
    options.run_command(lambda: run(parse_args(argv)))  # Ctrl-C: outputs are already closed and written by label_stream


if __name__ == "__main__":
    main()
