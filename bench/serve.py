"""The server under load: starts `python -m realtime.serve` on a free 127.0.0.1 port, then N concurrent clients post
640x480 JPEGs with one face (the astronaut, shifted so no two are alike) to POST /v1/analyze for N = 1, 4, 16;
prints requests/s and p50/p95 latency per N, errors counted, then the frames/s one WebSocket client gets on
/v1/stream (two frames in flight, as the page sends them), and for scale the images/s of the same recognizer called
in-process from as many threads as the server uses, without HTTP, and where one request's CPU time goes: the
server's CPU per request (from /proc, all its processes and threads) against JPEG decoding, face detection and
classification timed on one thread, the rest being HTTP and the server's own work.
With --against OVERRIDES the same again with those overrides in place of the options' own or added (e.g.
realtime.detector=haar, or serve.workers=2 serve.threads=1: processes against threads), and the ratio of requests/s
at 16 clients.

With --soak MINUTES instead: good and bad requests (bad uploads, bombs, streams, clients leaving mid-upload) mixed
from --clients clients; prints the counts by kind and status, 5xx, p95 and the server's RSS after a warm-up and at the
end (the goal: no 5xx, growth <= 10 % over 10 minutes).

Every phase is bounded in time (--seconds) and requests (--max-requests); traffic goes to 127.0.0.1 only.
Run: python -m bench.serve [--model-dir models/efficient] [--seconds 10] [--json] [HYDRA OVERRIDES]
          [--against OVERRIDE ...]
     python -m bench.serve --soak 10 [--clients 16] [--max-requests 200000]
"""

import argparse
import asyncio
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import skimage.data

from emotion.config import Config, RealtimeConfig
from emotion.data.preprocess import crop_face
from emotion.inference import image_bytes
from emotion.inference.faces import face_detector
from emotion.inference.recognizer import EmotionRecognizer, as_bgr
from emotion.project_files import default_model_dir
from stages.composition import load_config

CLIENTS = (1, 4, 16)
VARIANTS = 16


def as_served(jpeg: bytes, max_pixels: int) -> np.ndarray:
    """The BGR frame the server labels from an upload: decoded with Pillow as it decodes one."""
    return as_bgr(image_bytes.decode(jpeg, max_pixels), "rgb")


def face_jpegs() -> list[bytes]:
    """640x480 JPEGs (quality 90) with the astronaut's face at a different place in each, where both detectors find
    exactly that face in the image as the server decodes it."""
    face = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (400, 400))
    detectors, images = [face_detector(RealtimeConfig()), face_detector(RealtimeConfig(detector="haar"))], []
    for i in range(3 * VARIANTS):  # more places than needed: some show the mission patch as a second face
        frame = np.full((480, 640, 3), 90, np.uint8)
        left, top = 10 + 4 * i, 10 + (5 * i) % 70
        frame[top : top + 400, left : left + 400] = face
        jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        received = as_served(jpeg, Config().serve.max_image_pixels)
        if all(len(detector.detect(received)) == 1 for detector in detectors):
            images.append(jpeg)
    if len(images) < VARIANTS:
        sys.exit(f"error: the detectors find the one face in only {len(images)} of the test images; check realtime.*")
    return images[:VARIANTS]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: str, port: int, overrides: list[str], log: Path) -> subprocess.Popen:
    """The server as a user starts it; returns once /healthz answers (or exits with its log)."""
    command = [sys.executable, "-m", "realtime.serve", "--model-dir", model_dir, "--port", str(port), *overrides]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    sys.exit(f"error: the server did not start:\n{log.read_text()[-2000:]}")


async def client(session: aiohttp.ClientSession, url: str, images: list[bytes], offset: int, stop_at: float,
                 budget: list[int], latencies: list[float], errors: list[str]) -> None:
    """Post images one after the other until the time or the shared request budget is spent."""
    i = offset
    while time.perf_counter() < stop_at and budget[0] > 0:
        budget[0] -= 1
        start = time.perf_counter()
        async with session.post(url, data=images[i % len(images)], headers={"Content-Type": "image/jpeg"}) as answer:
            body = await answer.json()
        if answer.status != 200 or len(body.get("faces", [])) != 1:
            errors.append(f"{answer.status}: {str(body)[:200]}")  # a refusal, or not the one face there is
        latencies.append(time.perf_counter() - start)
        i += 1


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (serve.workers > 1: the supervisor and its workers) (Linux)."""
    children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return [pid, *(descendant for child in children for descendant in process_tree(child))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants, all their threads, so far (Linux)."""
    total = 0
    for process in process_tree(pid):
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def load(base: str, images: list[bytes], clients: int, seconds: float, max_requests: int, pid: int) -> dict:
    """N clients for `seconds` (or max_requests in all): requests/s, p50/p95 latency in ms, errors, and the server's
    CPU milliseconds per request."""
    latencies, errors, budget = [], [], [max_requests]
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        for image in images[:4]:  # warm-up: connections open, the server's threads have their recognizers
            async with session.post(f"{base}/v1/analyze", data=image, headers={"Content-Type": "image/jpeg"}) as r:
                await r.read()
        start, cpu_start = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(*(client(session, f"{base}/v1/analyze", images, k, start + seconds, budget, latencies,
                                      errors) for k in range(clients)))
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu_start
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "first_error": errors[:1],
            "requests_per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "server_cpu_ms_per_request": round(1000 * cpu / max(len(latencies), 1), 2)}


async def stream(base: str, images: list[bytes], seconds: float, max_frames: int, in_flight: int = 2) -> dict:
    """One WebSocket client keeping `in_flight` frames sent ahead of the answers, as the page does: frames answered
    per second, and the frames the server dropped as stale."""
    sent = done = answers = errors = 0  # done: frames answered or dropped (the newest answer's index + 1)
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{base.replace('http', 'ws')}/v1/stream") as ws:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds and sent < max_frames:
            while sent - done < in_flight:
                await ws.send_bytes(images[sent % len(images)])
                sent += 1
            answer = json.loads((await ws.receive()).data)
            done, answers, errors = answer["index"] + 1, answers + 1, errors + ("error" in answer)
        elapsed = time.perf_counter() - start
    return {"frames_per_s": round(answers / elapsed, 1), "frames_sent": sent, "dropped": done - answers,
            "errors": errors}


def in_process(model_dir: str, cfg: Config, images: list[bytes], seconds: float) -> float:
    """Images/s of EmotionRecognizer.analyze on the decoded frames from as many threads as the server labels with
    (in all its workers): the work without HTTP."""
    threads = cfg.serve.threads * cfg.serve.workers
    frames = [cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR) for image in images]
    counts = [0] * threads

    def work(k: int) -> None:
        recognizer = EmotionRecognizer.from_dir(model_dir, cfg=cfg.realtime)
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            recognizer.analyze(frames[counts[k] % len(frames)])
            counts[k] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return round(sum(counts) / seconds, 1)


def breakdown(model_dir: str, cfg: Config, images: list[bytes], repeats: int = 5) -> dict[str, float]:
    """CPU milliseconds per image of each step of a request, on one thread: decode (as the server decodes an upload),
    detect, classify."""
    cv2.setNumThreads(1)
    recognizer = EmotionRecognizer.from_dir(model_dir, cfg=cfg.realtime)
    def decode(i: int) -> np.ndarray:
        return as_served(images[i], cfg.serve.max_image_pixels)

    frames = [decode(i) for i in range(len(images))]
    found = [recognizer.detector.detect(frame) for frame in frames]

    def classify(i: int) -> np.ndarray:
        gray = cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY)
        return recognizer.classify(np.stack([crop_face(gray, face.box, face.angle) for face in found[i]]))

    steps = {"decode": decode, "detect": lambda i: recognizer.detector.detect(frames[i]), "classify": classify}
    costs = {}
    for name, step in steps.items():
        start = time.process_time()
        for _ in range(repeats):
            for i in range(len(frames)):
                step(i)
        costs[name] = round(1000 * (time.process_time() - start) / (repeats * len(frames)), 2)
    cv2.setNumThreads(0)
    return costs


def serve(args, overrides: list[str], images: list[bytes]) -> dict:
    """The server under each load, then the same work in-process and broken into its steps."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(args.model_dir, port, overrides, Path(tmp) / "server.log")
        try:
            results = {"http": [asyncio.run(load(base, images, n, args.seconds, args.max_requests, server.pid))
                                for n in CLIENTS],
                       "websocket": asyncio.run(stream(base, images, args.seconds, args.max_requests))}
        finally:
            server.terminate()
            server.wait(timeout=30)
    cfg = load_config(overrides)
    results["in_process_images_per_s"] = in_process(args.model_dir, cfg, images, args.seconds)
    results["cpu_ms_per_image"] = breakdown(args.model_dir, cfg, images)
    return results


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (Linux)."""
    kib = 0
    for process in process_tree(pid):
        status = Path(f"/proc/{process}/status").read_text().splitlines()
        kib += int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
    return kib / 1024


def soak_requests(images: list[bytes]) -> dict[str, tuple[dict, int]]:
    """The mix a soak sends: kind -> (aiohttp request arguments, the status that is right for it); "form" holds the
    files of a multipart form (see request_arguments)."""
    jpeg = {"Content-Type": "image/jpeg"}
    bomb = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    bomb[16:24] = (30000).to_bytes(4, "big") * 2  # a header that declares 30000x30000 pixels
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    return {
        "image": ({"method": "POST", "url": "/v1/analyze", "data": images[1], "headers": jpeg}, 200),
        "not an image": ({"method": "POST", "url": "/v1/analyze", "data": b"%PDF-1.7", "headers": jpeg}, 400),
        "truncated": ({"method": "POST", "url": "/v1/analyze", "data": images[2][:2000], "headers": jpeg}, 400),
        "bomb": ({"method": "POST", "url": "/v1/analyze", "data": bytes(bomb), "headers": jpeg}, 413),
        "wrong type": ({"method": "POST", "url": "/v1/analyze", "data": images[3], "headers": {"Content-Type":
                                                                                              "text/plain"}}, 415),
        "no image field": ({"method": "POST", "url": "/v1/analyze", "form": {"thumbnail": images[0]}}, 400),
        "model": ({"method": "GET", "url": "/v1/model"}, 200),
        "metrics": ({"method": "GET", "url": "/metrics"}, 200),
    }


def request_arguments(request: dict, base: str) -> dict:
    """aiohttp's arguments for one of soak_requests' requests: a form is built anew each time (aiohttp sends a FormData
    once)."""
    arguments = {key: value for key, value in request.items() if key != "form"} | {"url": base + request["url"]}
    if "form" in request:
        arguments["data"] = aiohttp.FormData()
        for name, data in request["form"].items():
            arguments["data"].add_field(name, data, filename=f"{name}.jpg")
    return arguments


WEIGHTS = {"image": 12, "not an image": 1, "truncated": 1, "bomb": 1, "wrong type": 1, "no image field": 1, "model": 1,
           "metrics": 1}  # mostly good uploads


async def soak_client(session: aiohttp.ClientSession, base: str, images: list[bytes], rng: np.random.Generator,
                      stop_at: float, budget: list[int], seen: dict, latencies: list[float]) -> None:
    """Requests of every kind in a random order until the time or the shared budget is spent; now and then a stream
    of a few frames, or an upload abandoned half-way."""
    kinds, requests = list(WEIGHTS), soak_requests(images)
    weights = np.array(list(WEIGHTS.values()), float) / sum(WEIGHTS.values())
    while time.perf_counter() < stop_at and budget[0] > 0:
        budget[0] -= 1
        roll = rng.random()
        if roll < 0.02:  # a stream: 5 frames, then gone
            async with session.ws_connect(f"{base.replace('http', 'ws')}/v1/stream") as ws:
                for frame in images[:5]:
                    await ws.send_bytes(frame)
                    answer = json.loads((await ws.receive()).data)
                    seen[("stream", 200 if "faces" in answer else answer.get("status", 0))] += 1
            continue
        if roll < 0.03:  # a client that leaves mid-upload
            host, port = base.removeprefix("http://").split(":")
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 50000\r\n\r\n" + images[0][:1000])
            await writer.drain()
            writer.close()
            seen[("left mid-upload", 0)] += 1
            continue
        kind = kinds[rng.choice(len(kinds), p=weights)]
        start = time.perf_counter()
        async with session.request(**request_arguments(requests[kind][0], base)) as answer:
            await answer.read()
        latencies.append(time.perf_counter() - start)
        seen[(kind, answer.status)] += 1


async def soak(base: str, images: list[bytes], minutes: float, clients: int, max_requests: int, pid: int) -> dict:
    """Good and bad requests mixed from many clients for `minutes`: counts by kind and status, p95, the server's RSS
    after the warm-up (the first tenth) and at the end."""
    seen, latencies, budget, rss = collections.Counter(), [], [max_requests], []
    start = time.perf_counter()
    stop_at = start + 60 * minutes

    async def sample_rss() -> None:
        while time.perf_counter() < stop_at and budget[0] > 0:
            rss.append((time.perf_counter() - start, rss_mib(pid)))
            await asyncio.sleep(2)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        rngs = np.random.default_rng(0).spawn(clients)
        await asyncio.gather(sample_rss(), *(soak_client(session, base, images, rng, stop_at, budget, seen, latencies)
                                             for rng in rngs))
    # RSS moves up and down by several percent from one sample to the next (the allocator): compare the median of the
    # second tenth of the time (after the warm-up) with the median of the last tenth
    tenth = 6 * minutes
    after_warmup = float(np.median([mib for at, mib in rss if tenth <= at < 2 * tenth] or [rss[0][1]]))
    end = float(np.median([mib for at, mib in rss if at >= 9 * tenth] or [rss[-1][1]]))
    expected = {kind: status for kind, (_, status) in soak_requests(images).items()} | {"stream": 200,
                                                                                          "left mid-upload": 0}
    return {"minutes": round((time.perf_counter() - start) / 60, 2), "requests": sum(seen.values()),
            "by_kind": {f"{kind} {status}": count for (kind, status), count in sorted(seen.items())},
            "unexpected": sum(n for (kind, status), n in seen.items() if status != expected[kind]),
            "5xx": sum(n for (_, status), n in seen.items() if status >= 500),
            "p95_ms": round(float(np.percentile(np.array(latencies) * 1000, 95)), 1),
            "rss_mib_after_warmup": round(after_warmup, 1), "rss_mib_end": round(end, 1),
            "rss_mib_peak": round(max(mib for _, mib in rss), 1), "rss_growth": round(end / after_warmup - 1, 3)}


def run_soak(args, images: list[bytes]) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(args.model_dir, port, args.overrides, Path(tmp) / "server.log")
        try:
            return asyncio.run(soak(f"http://127.0.0.1:{port}", images, args.soak, args.clients, args.max_requests,
                                    server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)


def report_soak(result: dict, clients: int) -> None:
    print(f"soak: {result['minutes']} min, {clients} clients, {result['requests']} requests "
          f"({result['unexpected']} with an unexpected status, {result['5xx']} 5xx), p95 {result['p95_ms']} ms")
    print("by kind and status: " + ", ".join(f"{name}: {n}" for name, n in result["by_kind"].items()))
    print(f"server RSS (medians of samples every 2 s): {result['rss_mib_after_warmup']} MiB in the second tenth of the time "
          f"(after the warm-up), {result['rss_mib_end']} MiB in the last tenth: {100 * result['rss_growth']:+.1f} %; "
          f"peak {result['rss_mib_peak']} MiB")


def report(results: dict, overrides: list[str], images: list[bytes], seconds: float) -> None:
    print(f"POST /v1/analyze, 640x480 JPEG with one face ({len(images[0]) // 1000} kB), {seconds:.0f} s per row, "
          f"server options: {' '.join(overrides) or 'conf defaults'}")
    print("clients  requests  errors  requests/s  p50 ms  p95 ms  server CPU ms/request")
    for row in results["http"]:
        print(f"{row['clients']:>7}  {row['requests']:>8}  {row['errors']:>6}  {row['requests_per_s']:>10}  "
              f"{row['p50_ms']:>6}  {row['p95_ms']:>6}  {row['server_cpu_ms_per_request']:>21}"
              + (f"  first error: {row['first_error'][0]}" if row["errors"] else ""))
    ws = results["websocket"]
    print(f"WebSocket /v1/stream, one client, 2 frames in flight: {ws['frames_per_s']} frames/s answered "
          f"({ws['frames_sent']} sent, {ws['dropped']} dropped as stale, {ws['errors']} errors)")
    print(f"in-process EmotionRecognizer.analyze, no HTTP: {results['in_process_images_per_s']} images/s")
    steps = results["cpu_ms_per_image"]
    rest = results["http"][-1]["server_cpu_ms_per_request"] - sum(steps.values())
    print("CPU ms per request at 16 clients: " + ", ".join(f"{name} {ms}" for name, ms in steps.items())
          + f" (one thread each), HTTP and the rest {rest:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=str(default_model_dir()), help="model folder to serve (default: the "
                        "shipped model, %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default: %(default)s)")
    parser.add_argument("--max-requests", type=int, default=5000, help="requests per phase at most (default: "
                        "%(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the server (and the in-process figure), e.g. "
                        "realtime.blazeface_sizes=[128] (see python -m bench.detection)")
    parser.add_argument("--against", nargs="+", metavar="OVERRIDE", help="the same again with these overrides "
                        "(in place of the options' own of the same key), e.g. realtime.detector=haar, or "
                        "serve.workers=2 serve.threads=1")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="instead: good and bad requests mixed from "
                        "--clients clients for MINUTES (at most --max-requests); no 5xx and RSS growth after the "
                        "warm-up are the goal")
    parser.add_argument("--clients", type=int, default=16, help="--soak's clients (default: %(default)s)")
    args = parser.parse_args()
    images = face_jpegs()
    if args.soak:
        result = run_soak(args, images)
        print(json.dumps(result)) if args.json else report_soak(result, args.clients)
        return
    # the server options with --against's in place of those of the same key
    against = list({override.split("=")[0]: override for override in [*args.overrides, *(args.against or [])]}.values())
    runs = {"options": serve(args, args.overrides, images)}
    if args.against:
        runs["against"] = serve(args, against, images)
        runs["ratio_at_16_clients"] = round(runs["options"]["http"][-1]["requests_per_s"]
                                            / runs["against"]["http"][-1]["requests_per_s"], 2)
    if args.json:
        print(json.dumps(runs))
        return
    report(runs["options"], args.overrides, images, args.seconds)
    if args.against:
        print()
        report(runs["against"], against, images, args.seconds)
        print(f"\nrequests/s at 16 clients, {' '.join(args.overrides) or 'conf defaults'} / "
              f"{' '.join(against)}: {runs['ratio_at_16_clients']}x")

if __name__ == "__main__":
    main()
