"""Shared fixtures. Kafka is real: a noida-db broker (the pinned package) on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.broker import noida_binary

# asyncio debug mode in every test loop (read when each loop is created).
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _noida() -> str:
    return str(noida_binary())


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Kafka-protocol broker for this test session.

    ``CASCADE_TEST_BOOTSTRAP`` points the suite at an existing broker instead."""
    external = os.environ.get("CASCADE_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    data_dir: Path = tmp_path_factory.mktemp("noida")
    port = free_port()
    subprocess.run(
        [_noida(), "up", "--only", "kafka", "--kafka-port", str(port), "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
    )
    try:
        _wait_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            [_noida(), "down", "--data-dir", str(data_dir)], check=False, capture_output=True
        )


def _wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def unique() -> str:
    """A short random suffix for topic and group names, so tests never collide."""
    return uuid.uuid4().hex[:10]
