"""``cascade-monitor run``: the whole monitor on one machine, supervised.

One OS process per component, each the command a deployment would run: for every enabled
exchange a producer (``produce --exchange X``) and a consumer (``consume --exchange X``), the
asset aggregator (``aggregate``) and, when ``[[alerts.sinks]]`` are configured, the alert
dispatcher (``alerts``). Separate processes use every core (a crash's parsing and models are
CPU-bound) and fail alone. The supervisor:

* starts the embedded broker first when ``kafka.bootstrap_servers`` is empty (and stops what it
  started), like ``demo``;
* restarts a component that exits, after an exponential backoff with full jitter (reset once it
  has run ``healthy_after_s``), counting ``cascade_component_restarts_total{component}`` and
  logging the exit code;
* serves its own ``/metrics`` (``cascade_component_up``, ``..._ready``, restarts), ``/healthz``
  (live while every component is running or being restarted) and ``/readyz`` (every component's
  own ``/readyz`` answers 200) on ``metrics.port``; component *i* serves its ``/metrics``,
  ``/healthz`` and ``/readyz`` on ``metrics.port + i`` (the table printed at start; with port 0
  every one gets a free port);
* stops on SIGTERM/SIGINT: SIGTERM to every component (each commits and leaves its group),
  SIGKILL to any still running after ``stop_timeout_s``. On Linux a component also gets SIGTERM
  when the supervisor dies without stopping it (``PR_SET_PDEATHSIG``): no orphans keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import random
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.core.config import Config
from monitor.core.lifecycle import AsyncService, Health
from monitor.core.metrics import NAMESPACE

log = logging.getLogger(__name__)

READY_POLL_S: Final = 1.0
PROBE_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Component:
    name: str  # "produce binance", "consume binance", "aggregate", "alerts"
    args: tuple[str, ...]  # the CLI command and its flags (without --metrics-port/--config)
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plan_components(cfg: Config, exchanges: Sequence[str], base_port: int) -> list[Component]:
    """The components of ``exchanges`` (in order), with their metrics ports: ``base_port + 1``
    onwards (the supervisor keeps ``base_port``), or free ports when ``base_port`` is 0."""
    specs: list[tuple[str, tuple[str, ...]]] = []
    for x in exchanges:
        specs.append((f"produce {x}", ("produce", "--exchange", x)))
        specs.append((f"consume {x}", ("consume", "--exchange", x)))
    specs.append(("aggregate", ("aggregate",)))
    if cfg.alerts.sinks:
        specs.append(("alerts", ("alerts",)))
    return [
        Component(name, args, base_port + 1 + i if base_port else free_port())
        for i, (name, args) in enumerate(specs)
    ]


class SupervisorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.restarts = Counter(
            f"{NAMESPACE}_component_restarts_total",
            "Components of `cascade-monitor run` restarted after they exited.",
            ["component"],
            registry=registry,
        )
        self.up = Gauge(
            f"{NAMESPACE}_component_up",
            "1 while the component's process runs.",
            ["component"],
            registry=registry,
        )
        self.ready = Gauge(
            f"{NAMESPACE}_component_ready",
            "1 while the component's /readyz answers 200.",
            ["component"],
            registry=registry,
        )


@dataclass
class _Child:
    component: Component
    proc: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    ready: bool = False
    restarts: int = 0
    started_at: float = field(default=0.0)


class Supervisor(AsyncService):
    """Runs and restarts the components (see the module docstring)."""

    def __init__(
        self,
        components: Sequence[Component],
        registry: CollectorRegistry,
        *,
        config_path: Path | None = None,
        log_level: str = "info",
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        healthy_after_s: float = 30.0,
        stop_timeout_s: float = 20.0,
        rng: random.Random | None = None,
    ) -> None:
        self.children = [_Child(c) for c in components]
        self.metrics = SupervisorMetrics(registry)
        self._config_path = config_path
        self._log_level = log_level
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._healthy_after_s = healthy_after_s
        self._stop_timeout_s = stop_timeout_s
        self._rng = rng or random.Random()
        self._stopping = False
        self._poller: asyncio.Task[None] | None = None
        self._polled = asyncio.Event()  # replaced after every readiness poll

    def argv(self, c: Component) -> list[str]:
        argv = [sys.executable, "-m", "monitor.app.cli", *c.args, "--metrics-port", str(c.port)]
        if self._config_path is not None:
            argv += ["--config", str(self._config_path)]
        return [*argv, "--log-level", self._log_level]

    async def start(self) -> None:
        for child in self.children:
            child.task = asyncio.create_task(self._keep(child), name=child.component.name)
        self._poller = asyncio.create_task(self._poll_ready(), name="readiness")

    async def stop(self) -> None:
        """SIGTERM every component, wait up to ``stop_timeout_s``, SIGKILL what is left."""
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
        procs = [c.proc for c in self.children if c.proc is not None and c.proc.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        if procs:
            _, late = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs],
                                         timeout=self._stop_timeout_s)  # fmt: skip
            if late:
                log.warning("%d component(s) did not stop in %.0f s: killed", len(late),
                            self._stop_timeout_s)  # fmt: skip
                for p in procs:
                    if p.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            p.kill()
                await asyncio.gather(*(p.wait() for p in procs))
        tasks = [c.task for c in self.children if c.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, *( [self._poller] if self._poller else []),
                             return_exceptions=True)  # fmt: skip

    def health(self) -> Health:
        down = [c.component.name for c in self.children if c.task is None or c.task.done()]
        if down:
            return Health(live=False, ready=False, detail=f"not supervised: {down}")
        waiting = [c.component.name for c in self.children if not c.ready]
        return Health(
            live=True, ready=not waiting, detail=f"not ready: {waiting}" if waiting else ""
        )

    async def wait_ready(self, timeout_s: float) -> None:
        """Return once every component answers /readyz with 200."""
        async with asyncio.timeout(timeout_s):
            while not all(c.ready for c in self.children):
                polled = self._polled
                await polled.wait()

    # ---- internals ----------------------------------------------------------------------------

    async def _keep(self, child: _Child) -> None:
        name = child.component.name
        failures = 0
        while not self._stopping:
            child.started_at = time.monotonic()
            child.proc = await asyncio.create_subprocess_exec(
                *self.argv(child.component), preexec_fn=_die_with_parent
            )
            self.metrics.up.labels(name).set(1)
            log.info(
                "%s: started (pid %d, metrics on %s)", name, child.proc.pid, child.component.url
            )
            code = await child.proc.wait()
            self.metrics.up.labels(name).set(0)
            self.metrics.ready.labels(name).set(0)
            child.ready = False
            if self._stopping:
                return
            ran = time.monotonic() - child.started_at
            failures = 1 if ran >= self._healthy_after_s else failures + 1
            delay = self._rng.uniform(
                0, min(self._backoff[1], self._backoff[0] * 2 ** (failures - 1))
            )
            child.restarts += 1
            self.metrics.restarts.labels(name).inc()
            log.warning("%s exited with %s after %.1f s; restarting in %.2f s (restart %d)",
                        name, code, ran, delay, child.restarts)  # fmt: skip
            await asyncio.sleep(delay)

    async def _poll_ready(self) -> None:
        while True:
            results = await asyncio.gather(
                *(asyncio.to_thread(_probe, c.component.url + "/readyz") for c in self.children)
            )
            for child, ok in zip(self.children, results, strict=True):
                child.ready = ok and child.proc is not None and child.proc.returncode is None
                self.metrics.ready.labels(child.component.name).set(1 if child.ready else 0)
            polled, self._polled = self._polled, asyncio.Event()
            polled.set()
            await asyncio.sleep(READY_POLL_S)


_PR_SET_PDEATHSIG: Final = 1
# loaded here, in the parent: between fork and exec the child must not take the loader's locks
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux; elsewhere a no-op)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
