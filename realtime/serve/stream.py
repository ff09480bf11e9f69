"""The WebSocket stream: JPEG frames in, one JSON answer per labelled frame; frames that arrive while one is being
labelled replace each other, so a fast client gets answers for its newest frames instead of a growing queue."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from emotion.inference.image_bytes import ImageRefused

log = logging.getLogger(__name__)

TEXT_REFUSED = "a text message: send each frame as a binary message holding a JPEG or PNG"


class Newest:
    """A one-item mailbox: put() replaces an item not yet taken (a stale frame is dropped, never queued)."""

    def __init__(self):
        self.item, self.ready, self.dropped = None, asyncio.Event(), 0

    def put(self, item) -> None:
        self.dropped += self.ready.is_set() and item is not None
        self.item = item
        self.ready.set()

    async def get(self):
        await self.ready.wait()
        self.ready.clear()
        return self.item


async def serve_stream(websocket: WebSocket, label: Callable[[bytes, int, float], Awaitable[dict]],
                       protocol: str | None = None) -> None:
    """Answer each labelled frame with label(frame, index, seconds since the stream opened) until the client leaves.

    index counts the frames received, so gaps show the client which frames were dropped; a bad frame is answered
    {"error": ..., "status": 4xx, "index": ...} and the stream goes on. protocol: the subprotocol accepted.
    """
    await websocket.accept(protocol)
    newest, sending, start = Newest(), asyncio.Lock(), time.perf_counter()

    async def send(payload: dict) -> None:
        async with sending:  # the receiver (errors) and the labeller (answers) both send
            await websocket.send_json(payload)

    async def receive() -> None:
        index = 0
        while (message := await websocket.receive())["type"] != "websocket.disconnect":
            if message.get("bytes") is None:
                await send({"error": TEXT_REFUSED, "status": 415})
                continue
            newest.put((message["bytes"], index, round(time.perf_counter() - start, 3)))
            index += 1
        newest.put(None)

    receiver, labelled = asyncio.create_task(receive()), 0
    try:
        while (frame := await newest.get()) is not None:
            try:
                answer = await label(*frame)
            except ImageRefused as err:
                answer = {"error": str(err), "status": err.status, "index": frame[1]}
            await send(answer)
            labelled += 1
    except WebSocketDisconnect:
        pass  # the client left while an answer was on its way
    finally:
        receiver.cancel()
        log.info("stream closed: %d frames labelled, %d stale frames dropped", labelled, newest.dropped)
