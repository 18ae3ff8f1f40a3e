"""``cascade-monitor demo``: the whole pipeline, offline, on the embedded broker.

embedded Kafka (noida-db) <- producers <- exchange simulator (Binance + Bybit crash scenario)
                          -> consumers (numba kernels) -> /metrics + a live table on stdout
                          -> alert rules -> alerts topic -> dispatcher -> signed webhooks

Alerts: with no ``[[alerts.sinks]]`` configured, the demo delivers to a local receiver
(``monitor.alerting.receiver``) through a generic JSON sink signed with a fresh random key, and
prints every alert the receiver verified. With sinks configured, it delivers to them instead.
It runs the rules as configured: without ``[[alerts.rules]]``, the default ones
(docs/alerts.md), whose liquidation-surge rules take the demo crash to critical.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from monitor.alerting.receiver import Received, WebhookReceiver
from monitor.app.pipeline import Pipeline
from monitor.app.runtime import broker_for, serve_metrics
from monitor.core.config import Config
from monitor.core.symbols import canonical, split_concatenated
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator

log = logging.getLogger(__name__)

DEMO_EXCHANGES = ("binance", "bybit")
DEMO_KEY_ENV = "CASCADE_DEMO_WEBHOOK_KEY"  # the demo receiver's signing key (in-process only)


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float = 60.0  # wall-clock length of the run
    speed: float = 1.0  # scenario seconds per wall second
    refresh_s: float = 2.0
    seed: int = 7
    table: bool = True


def render_table(rows: Sequence[Any], now_s: float) -> str:
    """The live per-pair table. ``rows`` are consumers' PairSnapshot objects."""
    head = (
        f"{'exchange':<9} {'symbol':<14} {'price':>11} {'liq long 10s':>13} {'liq long 60s':>13} "
        f"{'liq short 60s':>13} {'vol 1s (bp)':>11} {'liq total $':>13} {'hawkes n':>8} "
        f"{'score':>6}"
    )
    lines = [time.strftime("%H:%M:%S", time.gmtime(now_s)) + " UTC  (liquidation rates in USD/s)"]
    lines += [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: (r.exchange, r.symbol)):
        total = r.liq_notional_long + r.liq_notional_short
        lines.append(
            f"{r.exchange:<9} {r.symbol:<14} {r.last_price:>11.2f} {r.rate(0, 10):>13,.0f} "
            f"{r.rate(0, 60):>13,.0f} {r.rate(1, 60):>13,.0f} {r.volatility * 1e4:>11.2f} "
            f"{total:>13,.0f} {_num(r.branching_ratio, 8, 2)} {_num(r.score, 6, 2)}"
        )
    return "\n".join(lines)


def _short_run_risk(cfg: Config) -> dict[str, Any]:
    """A one-minute run is shorter than the models' production warm-ups (15 min Hawkes window
    with 100 events, 15 min VPIN sizing): the demo shortens them so those models show values
    within the run. The liquidation-rate baseline keeps its hour: the demo starts cold, as a
    new deployment does, and its surge reads against the market-wide floor
    (docs/risk-models.md §9.1) rather than against a baseline learned from the crash's own first
    seconds. Production keeps the [risk] defaults."""
    r = cfg.risk
    return {"hawkes_min_events": min(r.hawkes_min_events, 20),
            "refit_interval_s": min(r.refit_interval_s, 2.0),
            "vpin_warmup_s": min(r.vpin_warmup_s, 10.0)}  # fmt: skip


def _num(x: float, width: int, digits: int) -> str:
    """A right-aligned number, or "-" while it is undefined (NaN)."""
    return f"{'-':>{width}}" if math.isnan(x) else f"{x:>{width}.{digits}f}"


async def run_demo(cfg: Config, opts: DemoOptions, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the demo; returns a summary (events sent/published/consumed, reconciliation)."""

    scenario = crash_scenario(duration_s=opts.duration_s * opts.speed, seed=opts.seed)
    symbols = sorted({e.venue_symbol for e in scenario.events})
    key = secrets.token_hex(32)
    receiver = WebhookReceiver(key.encode(), lambda got: _print_alert(got, out))
    async with (
        broker_for(cfg) as started_broker,
        ExchangeSimulator(scenario, speed=opts.speed) as sim,
        receiver,
    ):
        cfg = cfg.with_overrides(
            exchanges={
                x: {
                    "enabled": x in DEMO_EXCHANGES,
                    "ws_url": sim.url(x),
                    "rest_url": sim.rest_url(x),
                    "symbols": symbols,
                }
                for x in DEMO_EXCHANGES
            },
            risk=_short_run_risk(cfg),
            # a fresh scenario each run: no warm-up replay of the previous run's crash
            consumer={"warmup_s": 0.0},
            alerts=_demo_alerts(cfg, receiver),
        )
        registry = CollectorRegistry()
        endpoint = serve_metrics(cfg, registry)
        print(
            f"cascade-monitor demo: broker {cfg.bootstrap_servers}"
            f" ({'embedded, started' if started_broker else 'already running'}),"
            f" metrics {endpoint.url}, {opts.duration_s:.0f}s at speed {opts.speed:g}",
            file=out,
            flush=True,
        )
        for sink in cfg.alerts.sinks:
            print(f"alerts to {sink.kind} sink {sink.name!r}"
                  + (f" (the demo's receiver, {receiver.url})" if sink.url == receiver.url else ""),
                  file=out, flush=True)  # fmt: skip
        print("alert rules: " + ", ".join(r.name for r in cfg.alerts.rules), file=out, flush=True)
        try:
            async with Pipeline(
                cfg, DEMO_EXCHANGES, registry, environ={DEMO_KEY_ENV: key}
            ) as pipeline:
                sim.play()
                finished = asyncio.ensure_future(sim.wait_finished())
                while not finished.done():
                    await asyncio.wait([finished], timeout=opts.refresh_s)
                    if opts.table:
                        rows = [r for c in pipeline.consumers for r in c.snapshot()]
                        print("\n" + render_table(rows, time.time()), file=out, flush=True)
                published = await pipeline.drain()
                alerts_sent = await pipeline.flush_alerts()
                rows = [r for c in pipeline.consumers for r in c.snapshot()]
                print("\nfinal\n" + render_table(rows, time.time()), file=out, flush=True)
                summary = _summary(sim, rows, published, pipeline.consumers)
                summary["alerts_sent"] = alerts_sent
                summary["alerts_received"] = [r.alert for r in receiver.received]
                summary["alerts_rejected"] = receiver.rejected
                print(_format_summary(summary), file=out, flush=True)
                return summary
        finally:
            endpoint.close()


def _demo_alerts(cfg: Config, receiver: WebhookReceiver) -> dict[str, Any]:
    """The [alerts] the demo runs with (see the module docstring)."""
    a: dict[str, Any] = {}
    if not cfg.alerts.sinks:
        a["sinks"] = [{"name": "demo-receiver", "kind": "json", "url": receiver.url,
                       "secret_env": DEMO_KEY_ENV, "backoff_initial_s": 0.1,
                       "backoff_max_s": 1.0}]  # fmt: skip
    return a


def _print_alert(got: Received, out: TextIO) -> None:
    a = got.alert
    lag = got.arrived_ts - a["received_ts"] if a.get("received_ts") else math.nan
    print(f"ALERT {a['status']:<8} {a['summary']}  [signature verified; {lag * 1000:.0f} ms "
          "after the triggering event was received]", file=out, flush=True)  # fmt: skip


def _summary(
    sim: Any, rows: Sequence[Any], published: dict[str, int], consumers: Sequence[Any]
) -> dict[str, Any]:
    """Reconcile what the simulator sent with what the consumers applied, per pair and side."""
    sent: dict[tuple[str, str, str], float] = {}
    for (venue, venue_symbol, side), usd in sim.ledger.liquidation_notional().items():
        base, quote, expiry = split_concatenated(venue_symbol)
        sent[(venue, canonical(base, quote, expiry), side)] = usd
    seen: dict[tuple[str, str, str], float] = {}
    for r in rows:
        seen[(r.exchange, r.symbol, "long")] = r.liq_notional_long
        seen[(r.exchange, r.symbol, "short")] = r.liq_notional_short
    worst = max((abs(seen.get(k, 0.0) - v) for k, v in sent.items()), default=0.0)
    return {
        "liquidations_sent": len(sim.ledger.liquidations),
        "trades_sent": len(sim.ledger.trades),
        "events_published": published,
        "events_consumed": {c.exchange: c.processed_events for c in consumers},
        "liquidation_notional_sent_usd": sum(sent.values()),
        "liquidation_notional_seen_usd": sum(seen.values()),
        "max_pair_difference_usd": worst,
    }


def _format_summary(s: dict[str, Any]) -> str:
    return (
        f"\nsent by the simulator: {s['liquidations_sent']} liquidations, {s['trades_sent']} trades"
        f"\npublished to Kafka: {s['events_published']}  consumed: {s['events_consumed']}"
        f"\nliquidation notional sent ${s['liquidation_notional_sent_usd']:,.2f}, on /metrics "
        f"${s['liquidation_notional_seen_usd']:,.2f} (largest per-pair difference "
        f"${s['max_pair_difference_usd']:.2f})"
        f"\nalerts: {s['alerts_sent']} transitions sent to the alerts topic, "
        f"{len(s['alerts_received'])} received and verified by the demo's webhook receiver"
        f" ({s['alerts_rejected']} rejected)"
    )


def demo(cfg: Config, opts: DemoOptions) -> int:
    """Run the demo; SIGINT or SIGTERM stop it cleanly (the broker it started is stopped)."""

    async def main() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await run_demo(cfg, opts)
        except asyncio.CancelledError:
            return 130
        return 0

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())
    return 130
