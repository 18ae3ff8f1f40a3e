"""The benchmarks' embedded broker (noida-db): a fresh one per run, on a free port, with its data in
a temporary directory that is removed afterwards."""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator

import producers.registry  # noqa: F401  (registers the venues: configurations know them)
from monitor.app.broker import EmbeddedBroker
from monitor.core.config import load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_broker() -> AsyncIterator[str]:
    """Start a broker of its own; yield its bootstrap address; stop it and delete its data."""
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        broker = EmbeddedBroker(load(environ={"CASCADE_MONITOR__BROKER__PORT": str(port),
                                              "CASCADE_MONITOR__BROKER__DATA_DIR": d}))  # fmt: skip
        await broker.up()
        try:
            yield broker.bootstrap
        finally:
            broker.down()
