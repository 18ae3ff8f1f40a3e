"""No false health alert during the demo's normal run, on both paths: the demo (its crash on
Binance and Bybit, every component heartbeating, the dispatcher's health watch evaluating the
default health rules) delivers its crash's risk alerts to its receiver and not one health alert,
while a real Prometheus scraping the demo with the shipped rules fires no health alert but the
always-firing Watchdog (watched through the whole run)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import pytest

from monitor.app.demo import DemoOptions, run_demo
from monitor.core.config import load
from tests.conftest import free_port
from tests.health.rig import POLL_S, start_prometheus

pytestmark = pytest.mark.slow


async def test_the_demo_raises_no_health_alert(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    port = free_port()
    cfg = load(environ={}).with_overrides(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"d{unique}"},
        consumer={"group_prefix": f"g{unique}"},
        metrics={"port": port},
    )
    prometheus = await start_prometheus(tmp_path, {"cascade-demo": port})
    firing: set[str] = set()  # health alerts Prometheus fired at any time during the run

    async def watch(http: aiohttp.ClientSession) -> None:
        while True:
            async with http.get(f"{prometheus.url}/api/v1/alerts") as resp:
                alerts = (await resp.json())["data"]["alerts"]
            firing.update(a["labels"]["alertname"] for a in alerts
                          if a["labels"].get("category") == "health"
                          and a["state"] == "firing")  # fmt: skip
            await asyncio.sleep(POLL_S)

    out = io.StringIO()
    try:
        async with aiohttp.ClientSession() as http:
            watcher = asyncio.create_task(watch(http))
            try:
                summary = await run_demo(
                    cfg, DemoOptions(duration_s=30.0, speed=4.5, seed=2, table=False), out
                )
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
    finally:
        prometheus.stop()
    alerts = summary["alerts_received"]
    assert [a for a in alerts if a.get("category") == "health"] == [], out.getvalue()
    assert any(a["category"] == "risk" and a["status"] == "firing" for a in alerts), alerts
    assert firing == {"Watchdog"}, firing  # the rules were evaluated, none but the Watchdog fired
