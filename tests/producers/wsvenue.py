"""A tiny scriptable websocket venue on 127.0.0.1 for the session and service tests.

Each connection records what the client sent; ``behavior(venue, ws, index)`` decides what the
venue does on that connection (send frames, stay silent, close). The connection ends when the
behavior returns (the server closes) or the client closes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Behavior = Callable[["Venue", ServerConnection, int], Awaitable[None]]


class Venue:
    def __init__(self, behavior: Behavior) -> None:
        self.behavior = behavior
        self.received: list[list[str]] = []  # per connection
        self.paths: list[str] = []
        self.opened_at: list[float] = []
        self.closed_at: list[float | None] = []
        self.open_now = 0
        self.max_open = 0
        self._server: Server | None = None
        self._changed: asyncio.Condition | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> Venue:
        self._changed = asyncio.Condition()
        self._server = await serve(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        assert self._changed is not None
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    async def _handle(self, ws: ServerConnection) -> None:
        idx = len(self.received)
        self.received.append([])
        assert ws.request is not None
        self.paths.append(ws.request.path)
        self.opened_at.append(time.monotonic())
        self.closed_at.append(None)
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        await self._notify()

        async def read() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for msg in ws:
                    self.received[idx].append(msg if isinstance(msg, str) else msg.decode())
                    await self._notify()

        reader = asyncio.create_task(read())
        acting = asyncio.create_task(self.behavior(self, ws, idx))
        try:
            await asyncio.wait({reader, acting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (reader, acting):
                t.cancel()
            results = await asyncio.gather(reader, acting, return_exceptions=True)
            self.open_now -= 1
            self.closed_at[idx] = time.monotonic()
            await self._notify()
        for r in results:
            if isinstance(r, Exception) and not isinstance(r, ConnectionClosed):
                raise r


async def forever(*_: Any) -> None:
    await asyncio.Event().wait()


def closed_port_url() -> str:
    """A URL nobody listens on (a port bound, then released), for connect-failure tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}"
