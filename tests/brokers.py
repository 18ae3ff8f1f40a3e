"""A real Apache Kafka broker for tests, driven through deploy/kafka/kafka.sh.

The script runs a single-node KRaft broker (broker and controller in one JVM) from the jars of the
pinned Kafka version (``deploy/kafka/kafka.sh fetch`` downloads them once into a cache). This class
only calls it: ``start`` returns once the broker serves requests; ``stop`` is a clean shutdown,
``kill`` a crash (SIGKILL), ``restart`` a stop and start on the same port and data, so a test sees
the same bootstrap address and the records written before.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"


@functools.cache
def kafka_unavailable_reason() -> str | None:
    """Why Apache Kafka cannot be started on this machine, or None when it can."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home, "bin", "java")) if java_home else "java"
    if shutil.which(java) is None:
        return f"Apache Kafka needs Java 17+, and there is no {java} (JAVA_HOME or PATH)"
    res = subprocess.run(["bash", str(SCRIPT), "libs"], capture_output=True, text=True, check=False)
    return None if res.returncode == 0 else res.stderr.strip()


class KafkaBroker:
    """One broker whose configuration, data, log (``broker.log``) and pid live in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pid: int | None = None
        self._bootstrap: str | None = None

    def _run(self, command: str) -> str:
        res = subprocess.run(
            ["bash", str(SCRIPT), command, str(self.data_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed:\n{res.stderr}")
        return res.stdout

    def _read_env(self, out: str) -> None:
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self._bootstrap = env["bootstrap"]
        self.pid = int(env["pid"])

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``; the port is chosen at the first start and kept by restarts."""
        if self._bootstrap is None:
            raise RuntimeError("the broker was never started")
        return self._bootstrap

    def start(self) -> str:
        """Start the broker and wait until it serves requests; returns its bootstrap address."""
        self._read_env(self._run("start"))
        return self.bootstrap

    def stop(self) -> None:
        """Clean shutdown (SIGTERM; SIGKILL if it has not exited after 30 s)."""
        self._run("stop")

    def kill(self) -> None:
        """Crash the broker (SIGKILL) and wait until the process has gone."""
        self._run("kill")

    def restart(self) -> str:
        """Stop (if running) and start again on the same port and data."""
        self._read_env(self._run("restart"))
        return self.bootstrap

    def log_tail(self, lines: int = 40) -> str:
        log = self.data_dir / "broker.log"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else ""
