"""``cascade-monitor replay``: serve a recording back so the real producer path runs on it.

One websocket server on 127.0.0.1 answers the recorded connections' paths (the producer is
pointed at ``url`` with the same exchange configuration as the recording, so it asks for the same
paths) and the recorded REST paths (instrument metadata). Each recorded connection is played once:
after the client has sent as many messages as the recording's subscribe frames, its frames follow
on one clock shared by every connection (recorded receive times, relative to the recording's
first frame, divided by ``speed``, from when the first connection began to play), so frames of
different connections keep their recorded order; client messages are read and ignored. Several
recorded connections can share a path (Bybit's configured symbols and its other listed symbols'
liquidations): a client gets the one whose first subscribe frame equals its first message, else
the first not yet played. A connection that finds every recording of its path played gets nothing
(a quiet venue), so a reconnecting producer never sees a frame twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from monitor.core.lifecycle import AsyncService
from monitor.core.recording import Recording, path_of, read_recording


class ReplayServer(AsyncService):
    stop_if_start_fails = False

    def __init__(self, recording: Recording | Path, *, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed {speed!r}: must be > 0")
        self.recording = read_recording(recording) if isinstance(recording, Path) else recording
        self.speed = speed
        self._by_path: dict[str, list[dict[str, Any]]] = {}
        for c in self.recording.connections():
            self._by_path.setdefault(path_of(c["url"]), []).append(c)
        self._played: set[str] = set()
        self._pending = {c["name"] for c in self.recording.connections()}
        self._done = asyncio.Event()
        if not self._pending:
            self._done.set()
        self._server: Server | None = None
        self.port = 0
        # one clock for every connection: a frame is due at its recorded receive time's offset
        # from the recording's first frame (divided by speed) after the first connection played,
        # so frames of different connections keep their recorded order and spacing
        firsts = [f[0][0] for f in self.recording.frames.values() if f]
        self._t0 = min(firsts) if firsts else 0
        self._epoch: float | None = None

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._route)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """The base URL to configure as the exchange's ws_url."""
        return f"ws://127.0.0.1:{self.port}{urlsplit(self.recording.header['base_url']).path}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_played(self) -> None:
        """Every recorded connection has been served all its frames."""
        await self._done.wait()

    def _route(self, conn: ServerConnection, request: Request) -> Response | None:
        if "upgrade" not in request.headers.get("Connection", "").lower():
            body = self.recording.rest.get(request.path)
            if body is None:
                return conn.respond(404, f"not recorded: {request.path}\n")
            response = conn.respond(200, body.decode())
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        if request.path not in self._by_path:
            return conn.respond(404, f"not recorded: {request.path}\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        specs = self._by_path[conn.request.path]
        try:
            message = await conn.recv() if any(s["subscribe"] for s in specs) else None
            unplayed = [s for s in specs if s["name"] not in self._played]
            matching = [s for s in unplayed if s["subscribe"] and s["subscribe"][0] == message]
            spec: dict[str, Any] = (matching or unplayed or specs)[0]
            name = spec["name"]
            first = name not in self._played
            self._played.add(name)
            for _ in spec["subscribe"][1 if message is not None else 0 :]:
                await conn.recv()
            if first:
                await self._play(conn, self.recording.frames.get(name, []))
                self._pending.discard(name)
                if not self._pending:
                    self._done.set()
            with contextlib.suppress(ConnectionClosed):
                async for _ in conn:  # keep the socket open; ignore pings and requests
                    pass
        except ConnectionClosed:
            pass

    async def _play(self, conn: ServerConnection, frames: list[tuple[int, str | bytes]]) -> None:
        if not frames:
            return
        loop = asyncio.get_running_loop()
        if self._epoch is None:  # the first connection to play fixes the common clock
            self._epoch = loop.time()
        start, t0 = self._epoch, self._t0
        for recv_ns, data in frames:
            due = start + (recv_ns - t0) / 1e9 / self.speed
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await conn.send(data)
