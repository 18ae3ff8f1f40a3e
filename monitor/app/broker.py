"""The embedded Kafka broker: noida-db (the pinned PyPI package) run from the installed package.

``EmbeddedBroker.up()`` starts ``noida-db up --only kafka`` with its data under the user's state
directory, waits until the broker answers Kafka metadata requests, and starts the retention janitor
beside it; ``down()`` stops both. noida-db never applies retention by itself (everything stays in
memory), so the janitor enforces the configured ``kafka.retention_s`` on every project topic through
the standard DeleteRecords admin call: each pass finds, per partition, the first offset whose
timestamp is inside the retention window (ListOffsets by time) and deletes everything before it.
The same janitor works against any Kafka, but real brokers apply ``retention.ms`` themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from monitor.core.config import Config
from monitor.core.errors import BrokerError
from monitor.core.topics import topic_partitions

log = logging.getLogger(__name__)

JANITOR_PID = "cascade-janitor.pid"


NO_EMBEDDED: str = (
    "the embedded broker (noida-db) is not installed here (it has wheels for Linux x86-64, macOS "
    "arm64 and Windows: pip install 'cascade-monitor[embedded]' there). Point the monitor at "
    "Kafka or Redpanda instead: kafka.bootstrap_servers in the config, or "
    "CASCADE_MONITOR__KAFKA__BOOTSTRAP_SERVERS=host:9092"
)


def noida_binary() -> Path:
    """The installed noida-db executable; BrokerError saying what to do when it is missing."""
    try:
        root = files("noida_db")
    except ModuleNotFoundError:
        raise BrokerError(NO_EMBEDDED) from None
    path = Path(str(root.joinpath("noida-db")))
    if not path.is_file():
        raise BrokerError(f"noida-db binary not found at {path}. {NO_EMBEDDED}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


async def kafka_ready(bootstrap: str, timeout_s: float) -> bool:
    """True once a Kafka metadata request succeeds (an open port alone is not enough)."""
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception as exc:
            if time.monotonic() > deadline:
                log.debug("broker %s not ready: %r", bootstrap, exc)
                return False
            await asyncio.sleep(0.2)
        finally:
            await admin.close()


@dataclass
class BrokerStatus:
    running: bool
    bootstrap: str
    data_dir: Path
    janitor_pid: int | None


class EmbeddedBroker:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.host, self.port = cfg.broker.host, cfg.broker.port
        self.data_dir = cfg.broker.resolved_data_dir()
        self._janitor: subprocess.Popen[bytes] | None = None  # when this process started it

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(noida_binary()), *args, "--data-dir", str(self.data_dir)]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)

    def is_running(self) -> bool:
        return port_open(self.host, self.port)

    async def up(self) -> bool:
        """Start broker and janitor; False if a broker already answers on the port."""
        if self.is_running():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        res = self._run(
            "up", "--only", "kafka", "--host", self.host, "--kafka-port", str(self.port)
        )
        if res.returncode != 0:
            raise BrokerError(f"noida-db up failed ({res.returncode}): {_tail(res)}")
        if not await kafka_ready(self.bootstrap, self.cfg.broker.start_timeout_s):
            self._run("down")
            raise BrokerError(
                f"embedded broker did not answer on {self.bootstrap} within "
                f"{self.cfg.broker.start_timeout_s}s; log: {self.data_dir / 'noida.log'}",
                retriable=True,
            )
        self._start_janitor()
        log.info("embedded broker up on %s (data %s)", self.bootstrap, self.data_dir)
        return True

    def down(self) -> None:
        self._stop_janitor()
        res = self._run("down")
        if res.returncode != 0 and self.is_running():
            raise BrokerError(f"noida-db down failed ({res.returncode}): {_tail(res)}")

    def status(self) -> BrokerStatus:
        return BrokerStatus(self.is_running(), self.bootstrap, self.data_dir, self._janitor_pid())

    # -- janitor process ----------------------------------------------------------------------

    def _janitor_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / JANITOR_PID).read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def _start_janitor(self) -> None:
        if self._janitor_pid() is not None:
            return
        k = self.cfg.kafka
        cmd = [
            sys.executable, "-m", "monitor.app.broker", "janitor",
            "--bootstrap", self.bootstrap, "--prefix", f"{k.topic_prefix}.",
            "--retention-s", str(k.retention_s), "--interval-s", str(self.cfg.broker.retention_check_s),
        ]  # fmt: skip
        with (self.data_dir / "cascade-janitor.log").open("ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._janitor = proc
        (self.data_dir / JANITOR_PID).write_text(str(proc.pid))

    def _stop_janitor(self) -> None:
        pid = self._janitor_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        if self._janitor is not None and self._janitor.pid == pid:
            self._janitor.wait(timeout=10)  # our child: reap it
        else:
            deadline = time.monotonic() + 10  # started by another process: poll until gone
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)
        self._janitor = None
        (self.data_dir / JANITOR_PID).unlink(missing_ok=True)


def _tail(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (res.stderr + res.stdout).splitlines() if "GLIBC" not in ln]
    return " | ".join(lines[-3:])


async def enforce_retention(
    bootstrap: str, prefix: str, retention_s: float, now_ms: int | None = None
) -> dict[TopicPartition, int]:
    """One janitor pass: delete records older than the retention window on ``prefix*`` topics.

    Returns the partitions whose log start moved, with the new start offset."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff = now_ms - int(retention_s * 1000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        parts = await topic_partitions(bootstrap, topics)
        tps = [TopicPartition(t, p) for t, ps in parts.items() for p in ps]
        if not tps:
            return {}
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        by_time = await consumer.offsets_for_times(dict.fromkeys(tps, cutoff))
        todo: dict[TopicPartition, RecordsToDelete] = {}
        for tp in tps:
            found = by_time.get(tp)
            target = end[tp] if found is None else found.offset  # None: every record is older
            if target > begin[tp]:
                todo[tp] = RecordsToDelete(before_offset=target)
        if not todo:
            return {}
        moved = await admin.delete_records(todo)
        for tp, low in moved.items():
            log.info("retention: %s[%d] now starts at %d", tp.topic, tp.partition, low)
        return dict(moved)
    finally:
        await admin.close()
        await consumer.stop()


async def _janitor(bootstrap: str, prefix: str, retention_s: float, interval_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            await enforce_retention(bootstrap, prefix, retention_s)
        except Exception:  # the broker may be restarting; try again next pass
            log.exception("retention pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m monitor.app.broker")
    sub = p.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("janitor", help="enforce retention on the embedded broker until stopped")
    j.add_argument("--bootstrap", required=True)
    j.add_argument("--prefix", required=True)
    j.add_argument("--retention-s", type=float, required=True)
    j.add_argument("--interval-s", type=float, default=30.0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_janitor(a.bootstrap, a.prefix, a.retention_s, a.interval_s))


if __name__ == "__main__":
    main()
