"""Shared fixtures. Kafka is real: a noida-db broker (the pinned package) on a free port, or with
``--broker kafka`` an Apache Kafka broker (deploy/kafka/kafka.sh, tests/brokers.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import producers.registry  # noqa: F401  (registers the venues: configurations know them)
from monitor.app.broker import noida_binary
from tests.brokers import KafkaBroker, kafka_unavailable_reason

# asyncio debug mode in every test loop (read when each loop is created).
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")

# Property tests draw the same examples on every run (derandomized, no example database), so the
# README test command and CI pass or fail the same way each time. To explore new examples on
# demand: CASCADE_HYPOTHESIS_PROFILE=explore (random draws, failures kept in .hypothesis/).
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("CASCADE_HYPOTHESIS_PROFILE", "deterministic"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _noida() -> str:
    return str(noida_binary())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker",
        choices=("noida", "kafka"),
        default=os.environ.get("CASCADE_TEST_BROKER", "noida"),
        help="the session's broker behind kafka_bootstrap: the embedded noida-db (default) or "
        "Apache Kafka from deploy/kafka/kafka.sh (env CASCADE_TEST_BROKER)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the session broker is an ``integration`` test (``-m integration`` selects
    the broker-dependent part of the suite, e.g. for the ``--broker kafka`` pass)."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


def _require_kafka() -> bool:
    return os.environ.get("CASCADE_REQUIRE_KAFKA") == "1"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``scaling`` tests run against Apache Kafka (the ``apache_kafka`` fixture) wherever it can
    run; where it cannot (no java, jars not fetched) they are skipped, or fail when
    CASCADE_REQUIRE_KAFKA=1 (set by .ci/run), so CI never passes by skipping them."""
    if item.get_closest_marker("scaling") is None:
        return
    reason = kafka_unavailable_reason()
    if reason is None:
        return
    if _require_kafka():
        pytest.fail(f"CASCADE_REQUIRE_KAFKA=1 but {reason}", pytrace=False)
    pytest.skip(f"scaling test needs Apache Kafka: {reason}")


@pytest.fixture(scope="session")
def apache_kafka(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaBroker]:
    """A running Apache Kafka broker for the session: the one behind ``kafka_bootstrap`` under
    ``--broker kafka``, otherwise one started for the tests that ask for it. A test that kills or
    stops it must start it again before it ends (``restart``), as later tests share it."""
    reason = kafka_unavailable_reason()
    if reason is not None:
        if _require_kafka() or request.config.getoption("broker") == "kafka":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bootstrap address of a real Kafka-protocol broker for this test session: noida-db, or
    Apache Kafka under ``--broker kafka``.

    ``CASCADE_TEST_BOOTSTRAP`` points the suite at an existing broker instead."""
    external = os.environ.get("CASCADE_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    if request.config.getoption("broker") == "kafka":
        yield request.getfixturevalue("apache_kafka").bootstrap
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
