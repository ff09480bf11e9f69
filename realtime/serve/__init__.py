"""The HTTP API and live browser page: `python -m realtime.serve` (installed: `fer-serve`).

app: the routes (FastAPI); labeller: the model that serves, its reload, inference off the event loop; batching: the
faces of concurrent requests classified together; uploads: request bytes to an image, or a 4xx refusal; stream: the
WebSocket, dropping stale frames; static/: the page.
"""
