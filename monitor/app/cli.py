"""The ``cascade-monitor`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.core.config import Config, load
from monitor.core.errors import MonitorError
from producers.registry import EXCHANGES

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from monitor.core.lifecycle import AsyncService

log = logging.getLogger("cascade-monitor")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        help="TOML config file (default: $CASCADE_MONITOR_CONFIG; "
        "env CASCADE_MONITOR__SECTION__KEY overrides any key)",
    )
    common.add_argument("--log-level", default="info", help="debug, info, warning, error")

    p = argparse.ArgumentParser(
        prog="cascade-monitor",
        description="Real-time liquidation-cascade risk monitor for crypto derivatives.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser(
        "demo",
        parents=[common],
        help="offline demo: embedded broker, simulated crash, producers, consumers, /metrics",
        description="Start the embedded Kafka broker (unless kafka.bootstrap_servers is set), a "
        "local exchange simulator playing a falling market with accelerating long liquidations on "
        "Binance and Bybit, the producers and consumers, and a Prometheus endpoint; print a live "
        "per-pair table. Stops what it started.",
    )
    d.add_argument("--duration", type=float, default=60.0, help="wall-clock seconds (default 60)")
    d.add_argument("--speed", type=float, default=1.0, help="scenario seconds per second")
    d.add_argument("--seed", type=int, default=7, help="scenario random seed")
    d.add_argument("--metrics-port", type=int, help="override metrics.port (0: any free port)")
    d.add_argument("--no-table", action="store_true", help="print only the final summary")

    ru = sub.add_parser(
        "run",
        parents=[common],
        help="the whole monitor on one machine: producers, consumers, aggregator, dispatcher",
        description="Run every enabled exchange's producer and consumer, the asset aggregator and "
        "(with [[alerts.sinks]]) the alert dispatcher, each as its own supervised process, "
        "restarted with backoff if it exits; on the embedded broker unless "
        "kafka.bootstrap_servers is set. /metrics, /healthz and /readyz: the supervisor on "
        "metrics.port, component i on metrics.port + i (printed at start). SIGTERM stops all.",
    )
    ru.add_argument("--exchange", action="append", choices=EXCHANGES,
                    help="run this exchange (repeat for several; default: the enabled ones)")  # fmt: skip
    ru.add_argument("--metrics-port", type=int,
                    help="the supervisor's port, components on the next ones (0: free ports)")  # fmt: skip

    for name, what in (
        ("produce", "read one exchange's websocket feeds and publish normalized events to Kafka"),
        ("consume", "compute risk metrics for one exchange (one consumer group per exchange)"),
    ):
        c = sub.add_parser(name, parents=[common], help=what, description=what)
        c.add_argument("--exchange", required=True, choices=EXCHANGES)
        c.add_argument("--metrics-port", type=int, help="override metrics.port (0: any free)")

    a = sub.add_parser(
        "aggregate",
        parents=[common],
        help="the asset view across venues: read the risk topic, export per-asset metrics",
        description="Combine the consumers' per-pair risk snapshots (<prefix>.risk) into one view "
        "per asset (BTC across Binance, Bybit, OKX, ...): summed liquidation rates and notional "
        "at risk, the worst venue's score; exported as cascade_asset_* on /metrics.",
    )
    a.add_argument("--metrics-port", type=int, help="override metrics.port (0: any free)")

    al = sub.add_parser(
        "alerts",
        parents=[common],
        help="deliver the alerts topic to the configured webhook sinks (durable, at-least-once)",
        description="Consume <prefix>.alerts in the consumer group <group_prefix>.alerts and "
        "deliver every alert to each [[alerts.sinks]] receiver (json signed with HMAC-SHA256, "
        "slack, discord, pagerduty, alertmanager), with retries, per-sink concurrency and "
        "ordering per alert; offsets are committed once every sink took the alert or it was "
        "dead-lettered to <prefix>.alerts.deadletter. Secrets come from secret_env/secret_file "
        "and url_env/url_file.",
    )
    al.add_argument("--metrics-port", type=int, help="override metrics.port (0: any free)")

    b = sub.add_parser(
        "broker",
        parents=[common],
        help="the embedded Kafka broker (noida-db)",
        description="Run the embedded broker with its data under the state directory "
        "(broker.data_dir), plus the retention janitor that applies kafka.retention_s.",
    )
    b.add_argument("action", choices=("up", "down", "status"))

    r = sub.add_parser(
        "record",
        parents=[common],
        help="write one exchange's raw frames (and instrument metadata) to a gzip JSON-lines file",
        description="Connect to the exchange's feeds as the producer would (the configured "
        "ws_url, by default the real venue) and record every frame with its receive time.",
    )
    r.add_argument("--exchange", required=True, choices=EXCHANGES)
    r.add_argument("--out", type=Path, help="file (default: <state dir>/recordings/...)")
    r.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")

    rp = sub.add_parser(
        "replay",
        parents=[common],
        help="serve a recording on 127.0.0.1 so a producer runs on it",
        description="Serve the recorded frames (and instrument metadata) of FILE on a local "
        "websocket server; point the exchange's ws_url and rest_url at the printed URLs and run "
        "`cascade-monitor produce` with the same exchange configuration as the recording.",
    )
    rp.add_argument("file", type=Path)
    rp.add_argument("--speed", type=float, default=1.0, help="recorded seconds per second")

    bt = sub.add_parser(
        "backtest",
        parents=[common],
        help="replay recordings through the parsers, models and alert rules, on event time",
        description="Run one or more recordings (record's files, the simulator's renderings; "
        "several venues at once, merged by receive time) through the producers' parsers, the "
        "codec, the consumers' state, models and alert rules (the configured rules, by default "
        "the default ones) in one process, as fast as the CPU allows. Prints the alert "
        "transitions in event-time order and a per-pair summary.",
    )
    bt.add_argument("files", type=Path, nargs="+", metavar="FILE")
    bt.add_argument("--out", type=Path, help="write the transitions here, one JSON per line")
    bt.add_argument("--summary", type=Path, help="write the full summary here (JSON)")
    bt.add_argument("--top", type=int, default=25, help="pairs printed (default 25)")

    rpt = sub.add_parser(
        "report",
        parents=[common],
        help="post-mortem of one pair over a window: a PNG and a self-contained HTML page",
        description="Draw price, liquidation rates by side, the composite score and its "
        "components, the branching ratio and the alert marks of one pair over a window read from "
        "Prometheus (query_range), and write <out>.png and <out>.html (needs the 'report' extra: "
        "matplotlib).",
    )
    rpt.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    rpt.add_argument("--exchange", required=True)
    rpt.add_argument("--symbol", required=True, help="canonical symbol, e.g. BTC-USDT-PERP")
    rpt.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="window start: Unix seconds or ISO 8601 (UTC unless an offset is given)",
    )
    rpt.add_argument("--to", dest="end", metavar="TIME", help="window end (default: now)")
    rpt.add_argument("--last", metavar="DURATION", help="the window ending now: 90s, 30m, 2h, 1d")
    rpt.add_argument(
        "--out",
        type=Path,
        help="files <out>.png and <out>.html (default: cascade-report-<pair>-<start>)",
    )

    s = sub.add_parser(
        "simulate",
        parents=[common],
        help="run the exchange simulator alone (point producers at the printed URLs)",
        description="Serve the crash scenario on local websocket servers speaking each venue's "
        "protocol (all ten by default), with their REST instrument listings on the same ports.",
    )
    s.add_argument("--duration", type=float, default=300.0, help="scenario seconds")
    s.add_argument("--speed", type=float, default=1.0)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument(
        "--venue",
        action="append",
        choices=EXCHANGES,
        help="a venue to serve (repeat for several; default: all ten)",
    )
    s.add_argument("--record", type=Path, help="write every frame sent (gzip JSON lines)")
    s.add_argument(
        "--wait-for-subscribers",
        action="store_true",
        help="start playback only once every venue's liquidation feeds are subscribed",
    )
    return p


def _metrics_override(cfg: Config, port: int | None) -> Config:
    return cfg if port is None else cfg.with_overrides(metrics={"port": port})


async def _serve(
    cfg: Config, label: str, make: Callable[[CollectorRegistry], AsyncService]
) -> None:
    """Run one service with its /metrics endpoint and its health reporter (heartbeats to
    <prefix>.health, freshness gauges) until SIGINT/SIGTERM."""
    from prometheus_client import CollectorRegistry

    from monitor.app.health import reporter_for
    from monitor.app.runtime import require_broker, serve_metrics, wait_for_signal

    await require_broker(cfg)
    registry = CollectorRegistry()
    service = make(registry)
    endpoint = serve_metrics(cfg, registry, service.health)
    log.info("%s: metrics on %s (and /healthz, /readyz)", label, endpoint.url)
    try:  # the heartbeat starts after the service and stops before it (pipeline health)
        async with service, reporter_for(cfg, service, registry):
            await wait_for_signal()
    finally:
        endpoint.close()


async def _run(cfg: Config, args: argparse.Namespace) -> None:
    from prometheus_client import CollectorRegistry

    from monitor.app.run import Supervisor, plan_components
    from monitor.app.runtime import broker_for, serve_metrics, wait_for_signal

    exchanges = list(dict.fromkeys(args.exchange or cfg.enabled_exchanges()))
    async with broker_for(cfg) as started:
        components = plan_components(cfg, exchanges, cfg.metrics.port)
        registry = CollectorRegistry()
        supervisor = Supervisor(components, registry, config_path=args.config,
                                log_level=args.log_level)  # fmt: skip
        endpoint = serve_metrics(cfg, registry, supervisor.health)
        broker = "embedded, started" if started else cfg.bootstrap_servers
        print(f"broker: {broker}\nsupervisor: {endpoint.url} (/healthz, /readyz)", flush=True)
        for c in components:
            print(f"  {c.name:<20} {c.url}/metrics", flush=True)
        try:
            async with supervisor:
                await wait_for_signal()
        finally:
            endpoint.close()


async def _aggregate(cfg: Config) -> None:
    from consumers.aggregator import AssetAggregator

    await _serve(cfg, "aggregate", lambda registry: AssetAggregator(cfg, registry))


async def _alerts(cfg: Config) -> None:
    from monitor.alerting.dispatcher import AlertDispatcher, resolve_sinks

    resolve_sinks(cfg)  # a missing secret fails before anything starts
    await _serve(cfg, "alerts", lambda registry: AlertDispatcher(cfg, registry))


async def _run_service(cfg: Config, kind: str, exchange: str) -> None:
    from consumers.service import ConsumerService
    from producers.service import ProducerService

    service = ProducerService if kind == "produce" else ConsumerService
    await _serve(cfg, f"{kind} {exchange}", lambda registry: service(cfg, exchange, registry))


async def _simulate(args: argparse.Namespace) -> None:
    from monitor.app.runtime import wait_for_signal
    from monitor.simulator.scenario import crash_scenario
    from monitor.simulator.server import ExchangeSimulator

    venues = tuple(dict.fromkeys(args.venue or EXCHANGES))
    scenario = crash_scenario(duration_s=args.duration, seed=args.seed, venues=venues)
    async with ExchangeSimulator(scenario, speed=args.speed, record_path=args.record) as sim:
        for venue in venues:
            env = f"CASCADE_MONITOR__EXCHANGES__{venue.upper()}"
            print(
                f"{venue}: {sim.url(venue)}  ({env}__WS_URL={sim.url(venue)} "
                f"{env}__REST_URL={sim.rest_url(venue)} {env}__ENABLED=true)",
                flush=True,
            )
        if args.wait_for_subscribers:
            await sim.wait_liquidations_subscribed(timeout_s=3600)
        sim.play()
        print(f"playing {args.duration:.0f}s of scenario at speed {args.speed:g}", flush=True)
        done = asyncio.ensure_future(sim.wait_finished())
        stop = asyncio.ensure_future(wait_for_signal())
        await asyncio.wait([done, stop], return_when=asyncio.FIRST_COMPLETED)
        for t in (done, stop):
            t.cancel()
        print(f"sent {sim.ledger.counts()}", flush=True)


async def _record(cfg: Config, args: argparse.Namespace) -> None:
    import time

    from monitor.app.runtime import wait_for_signal
    from monitor.core.config import state_dir
    from producers.recording import record

    out = args.out or state_dir() / "recordings" / (
        f"{args.exchange}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.jsonl.gz"
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(record(cfg, args.exchange, out, stop))
    waiter = asyncio.ensure_future(wait_for_signal())
    await asyncio.wait([task, waiter], timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    stop.set()
    frames = await task
    print(f"{frames} frames recorded to {out}", flush=True)


async def _replay(args: argparse.Namespace) -> None:
    from monitor.app.runtime import wait_for_signal
    from monitor.simulator.replay import ReplayServer

    async with ReplayServer(args.file, speed=args.speed) as server:
        x = server.recording.exchange.upper()
        print(
            f"replaying {args.file} ({server.recording.exchange}) at speed {args.speed:g}:\n"
            f"  CASCADE_MONITOR__EXCHANGES__{x}__WS_URL={server.url}\n"
            f"  CASCADE_MONITOR__EXCHANGES__{x}__REST_URL={server.rest_url}",
            flush=True,
        )
        played = asyncio.ensure_future(server.wait_played())
        stop = asyncio.ensure_future(wait_for_signal())
        await asyncio.wait([played, stop], return_when=asyncio.FIRST_COMPLETED)
        if played.done():
            print("every recorded frame was served; Ctrl-C to stop", flush=True)
            await stop
        for t in (played, stop):
            t.cancel()


def _backtest(cfg: Config, args: argparse.Namespace) -> int:
    import orjson

    from monitor.app.backtest import backtest, format_result, write_jsonl

    result = backtest(cfg, args.files)
    print(format_result(result, args.top), flush=True)
    if args.out is not None:
        write_jsonl(args.out, result)
        print(f"{len(result.transitions)} transitions written to {args.out}")
    if args.summary is not None:
        doc = {"pairs": [p.to_dict() for p in result.pairs],
               "venues": [v.to_dict() for v in result.venues],
               "first_recv_ms": result.first_ms, "last_recv_ms": result.last_ms}  # fmt: skip
        args.summary.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        print(f"summary written to {args.summary}")
    return 0


def _broker(cfg: Config, action: str) -> int:
    from monitor.app.broker import EmbeddedBroker

    broker = EmbeddedBroker(cfg)
    if not cfg.uses_embedded_broker and action != "status":
        print(f"note: kafka.bootstrap_servers is {cfg.kafka.bootstrap_servers!r}; "
              "the embedded broker is not used by the other commands")  # fmt: skip
    if action == "up":
        started = asyncio.run(broker.up())
        st = broker.status()
        print(
            f"embedded broker {'started' if started else 'already running'} on {st.bootstrap} "
            f"(data {st.data_dir}, retention janitor pid {st.janitor_pid})"
        )
    elif action == "down":
        broker.down()
        print(f"embedded broker stopped (data kept in {broker.data_dir})")
    else:
        st = broker.status()
        state = "running" if st.running else "stopped"
        print(f"embedded broker {state} on {st.bootstrap}; data {st.data_dir}; "
              f"retention janitor {'pid ' + str(st.janitor_pid) if st.janitor_pid else 'not running'}")  # fmt: skip
        return 0 if st.running else 3
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from monitor.app.runtime import setup_logging

    setup_logging(args.log_level)
    try:
        cfg = load(args.config)
        if args.command == "demo":
            from monitor.app.demo import DemoOptions, demo

            cfg = _metrics_override(cfg, args.metrics_port)
            opts = DemoOptions(
                duration_s=args.duration, speed=args.speed, seed=args.seed, table=not args.no_table
            )
            return demo(cfg, opts)
        if args.command in ("produce", "consume"):
            cfg = _metrics_override(cfg, args.metrics_port)
            asyncio.run(_run_service(cfg, args.command, args.exchange))
            return 0
        if args.command == "run":
            asyncio.run(_run(_metrics_override(cfg, args.metrics_port), args))
            return 0
        if args.command == "aggregate":
            asyncio.run(_aggregate(_metrics_override(cfg, args.metrics_port)))
            return 0
        if args.command == "alerts":
            asyncio.run(_alerts(_metrics_override(cfg, args.metrics_port)))
            return 0
        if args.command == "broker":
            return _broker(cfg, args.action)
        if args.command == "report":
            import time

            from monitor.app.report import report

            paths = report(
                args.prometheus,
                args.exchange,
                args.symbol,
                start=args.start,
                end=args.end,
                last=args.last,
                out=args.out,
                now=time.time(),
            )
            print("\n".join(f"wrote {p}" for p in paths))
            return 0
        if args.command == "record":
            asyncio.run(_record(cfg, args))
            return 0
        if args.command == "replay":
            asyncio.run(_replay(args))
            return 0
        if args.command == "backtest":
            return _backtest(cfg, args)
        asyncio.run(_simulate(args))
        return 0
    except MonitorError as exc:
        print(f"cascade-monitor: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
