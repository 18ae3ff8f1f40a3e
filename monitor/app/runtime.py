"""Process plumbing of the commands: logging, the /metrics, /healthz and /readyz endpoint, the
broker check (and the embedded broker when none is configured), waiting for a stop signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from monitor.app.broker import EmbeddedBroker, kafka_ready
from monitor.core.config import Config
from monitor.core.errors import BrokerError
from monitor.core.lifecycle import Health


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: Prometheus and probes call every few seconds."""


@dataclass
class MetricsEndpoint:
    """``/metrics`` (Prometheus), ``/healthz`` (liveness) and ``/readyz`` (readiness) on one port."""

    server: Any
    thread: Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def health_app(registry: CollectorRegistry, health: Callable[[], Health]) -> Any:
    """The WSGI app: /metrics from ``registry``; /healthz 200 while ``health().live``, 503 when
    not; /readyz 200 while ``ready``; the body says why."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            h = health()
            ok = h.live if path == "/healthz" else h.live and h.ready
            body = (("ok" if ok else "not ready") + (f": {h.detail}" if h.detail else "")).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(
                status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return metrics(environ, start_response)

    return app


def serve_metrics(
    cfg: Config, registry: CollectorRegistry, health: Callable[[], Health] | None = None
) -> MetricsEndpoint:
    """Serve the endpoint on ``metrics.host:metrics.port`` (0: a free port) in a thread."""
    app = health_app(registry, health or (lambda: Health(live=True, ready=True)))
    server = make_server(cfg.metrics.host, cfg.metrics.port, app, _Server, _QuietHandler)
    thread = Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsEndpoint(server, thread, cfg.metrics.host, int(server.server_port))


async def require_broker(cfg: Config, timeout_s: float = 10.0) -> None:
    """Fail clearly when no broker answers (commands other than demo never start one)."""
    if not await kafka_ready(cfg.bootstrap_servers, timeout_s):
        hint = (
            "start the embedded one with `cascade-monitor broker up`"
            if cfg.uses_embedded_broker
            else "check kafka.bootstrap_servers"
        )
        raise BrokerError(f"no Kafka broker answers at {cfg.bootstrap_servers}: {hint}")


@contextlib.asynccontextmanager
async def broker_for(cfg: Config) -> AsyncIterator[bool]:
    """Yield with a reachable broker; start the embedded one if needed and stop what we started."""
    if not cfg.uses_embedded_broker:
        await require_broker(cfg)
        yield False
        return
    broker = EmbeddedBroker(cfg)
    started = await broker.up()
    if not started and not await kafka_ready(cfg.bootstrap_servers, cfg.broker.start_timeout_s):
        raise BrokerError(f"something listens on {broker.bootstrap} but does not speak Kafka")
    try:
        yield started
    finally:
        if started:
            broker.down()


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
