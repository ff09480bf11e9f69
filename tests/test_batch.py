"""Batch analysis of a video archive: a few short videos of a face (one corrupt) labelled on the local process pool
and on a local Ray instance, with the same Parquet output; reruns skip what is done and redo what was interrupted;
every bad input is refused in one line."""

import subprocess
import sys

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from emotion.config import RealtimeConfig
from emotion.errors import DataError
from emotion.inference.backends import ModelFile, load_backend
from realtime.batch import runners
from realtime.batch.__main__ import main
from realtime.batch.store import Store
from realtime.batch.videos import Video
from realtime.batch.worker import VideoLabeller
from test_realtime import NO_KERAS, astronaut_frame

FRAMES = {"a": 4, "b": 5, "c": 6}
MODEL = ("--model-dir", str(ROOT / "models" / "efficient"))  # a shipped model, whatever MLflow store is about


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three short videos of the moving astronaut (a nested one among them) and a corrupt one."""
    root = tmp_path_factory.mktemp("archive")
    (root / "nested").mkdir()
    for name, frames in FRAMES.items():
        path = root / ("nested" if name == "c" else "") / f"{name}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
        for shift in range(frames):
            writer.write(np.roll(astronaut_frame(), 8 * shift, axis=1))
        writer.release()
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    return root


def batch(caplog, *args: str) -> tuple[int | str, str]:
    """Exit code (an error: its message) and log of python -m realtime.batch ARGS, run in this process."""
    caplog.clear()
    caplog.set_level("INFO")
    with pytest.raises(SystemExit) as exit:
        main(list(args))
    return exit.value.code or 0, caplog.text


@pytest.fixture(scope="module")
def pool_out(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("pool") / "results"
    with pytest.raises(SystemExit) as exit:
        main([str(archive), "--out", str(out), "--workers", "2", *MODEL])
    assert exit.value.code == 1  # one video failed
    return out


def tables(out) -> dict:
    """Every table of an output as plain rows, frames and tracks in video order."""
    store = Store(str(out))
    return {name: sorted(store.read(name).to_pylist(), key=lambda row: (row.get("video"), row.get("index", 0),
                                                                         row.get("track", 0), row.get("emotion", "")))
            for name in ("frames", "tracks", "videos", "summary", "failures")}


def test_the_pool_writes_every_frame_of_every_good_video_and_lists_the_corrupt_one(pool_out, archive):
    result = tables(pool_out)
    summary = {row["uri"].removeprefix(str(archive) + "/"): row for row in result["summary"]}
    assert {name: row["frames"] for name, row in summary.items()} == {"a.avi": 4, "b.avi": 5, "nested/c.avi": 6}
    frames_per_video = {}
    for row in result["frames"]:
        frames_per_video.setdefault(row["video"], []).append(row["index"])
    assert sorted(map(sorted, frames_per_video.values())) == [list(range(n)) for n in FRAMES.values()]
    assert all(len(row["faces"]) == 1 and row["faces"][0]["label"] for row in result["frames"])
    assert {row["video"] for row in result["tracks"]} == {row["video"] for row in result["summary"]}
    [failure] = result["failures"]
    assert failure["uri"] == str(archive / "corrupt.mp4") and failure["attempts"] == 2
    assert "cannot read video" in failure["error"] and "(nothing of it kept: a video counts only whole)" in failure["error"]
    frames = pq.read_table(pool_out / "frames").schema  # readable as one dataset, the video a column
    assert {"index", "time_s", "faces", "video"} <= set(frames.names)


def test_a_rerun_skips_videos_done_and_redoes_an_interrupted_one(pool_out, archive, tmp_path, caplog):
    out = tmp_path / "results"
    subprocess.run(["cp", "-r", str(pool_out), str(out)], check=True)
    store = Store(str(out))
    [interrupted, *done] = sorted(store.done())
    store.fs.delete_dir(f"{store.root}/videos/video={interrupted}")  # as if killed before its row was written
    (out / "frames" / f"video={interrupted}" / "part-0.parquet").write_bytes(b"half a file")
    parts = {path: path.stat().st_mtime_ns for video in done for path in out.glob(f"*/video={video}/*.parquet")}
    code, err = batch(caplog, str(archive / "**" / "*.avi"), "--out", str(out), "--workers", "1", *MODEL)
    assert code == 0 and "3 videos, 2 already done" in err and "[1/1]" in err
    assert {path: path.stat().st_mtime_ns for path in parts} == parts
    assert tables(out) | {"failures": []} == tables(pool_out) | {"failures": []}


def test_a_video_that_breaks_half_way_leaves_nothing_and_says_so(archive, tmp_path):
    data = (archive / "b.avi").read_bytes()
    (tmp_path / "broken.avi").write_bytes(data[: len(data) // 2])
    out = str(tmp_path / "results")
    backend = load_backend(ROOT / "models" / "efficient", "onnx-int8")
    labeller = VideoLabeller(ModelFile(backend.path.read_bytes(), backend.test_time), RealtimeConfig(), out)
    with pytest.raises(DataError, match=r"ended after \d+ of its 5 frames .*\(nothing of it kept: a video counts only "
                                        r"whole\)$"):
        labeller.label(Video("broken", str(tmp_path / "broken.avi")))
    assert not Store(out).done() and not list((tmp_path / "results").rglob("*.parquet"))


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    context = ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield context.address_info["address"]
    ray.shutdown()


@pytest.mark.services
def test_ray_gives_the_same_output_as_the_local_pool(ray_instance, pool_out, archive, tmp_path, caplog):
    out = tmp_path / "ray"
    code, err = batch(caplog, str(archive), "--out", str(out), "--ray", ray_instance, *MODEL)
    assert code == 1 and "FAILED (2 tries): cannot read video" in err
    assert tables(out) == tables(pool_out)


def test_bad_input_is_refused_in_one_line(archive, tmp_path, caplog, monkeypatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "list.txt").write_bytes(b"\xff\xfe not utf-8")
    out = str(tmp_path / "out")
    cases = {
        str(tmp_path / "missing"): "does not exist: give a folder of videos",
        str(tmp_path / "empty"): "no videos found in",
        str(tmp_path / "list.txt"): "cannot read the video list",
    }
    for spec, message in cases.items():
        code, err = batch(caplog, spec, "--out", out)
        assert code.startswith("error: ") and message in code
    (tmp_path / "results.txt").write_text("a file")
    code, err = batch(caplog, str(archive), "--out", str(tmp_path / "results.txt"), *MODEL)
    assert code == f"error: --out {tmp_path / 'results.txt'} is a file: name a folder for the results (it is made if " \
                   "missing)" and "model" not in err  # refused before the model loads or a video starts
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _ = batch(caplog, str(archive), "--out", out, "--ray", "auto")
    assert code == f"error: --ray needs Ray, which is not installed: {runners.RAY_HELP}"
    monkeypatch.delitem(sys.modules, "ray")
    with pytest.raises(runners.UserError, match="cannot connect to the Ray cluster at 127.0.0.1:1 "):
        runners.check_reachable("127.0.0.1:1")


def test_help_imports_neither_ray_nor_onnx_runtime_nor_keras():
    code = ("import sys\nsys.argv = ['batch', '--help']\nfrom realtime.batch.__main__ import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nassert not {'ray', 'onnxruntime', 'pyarrow'} & set(sys.modules), "
            f"sorted({{'ray', 'onnxruntime', 'pyarrow'}} & set(sys.modules))\n{NO_KERAS}")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: python -m realtime.batch" in result.stdout, result.stderr[-2000:]
