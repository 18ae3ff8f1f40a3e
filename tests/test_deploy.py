"""The shipped example configuration stays valid for the code that reads it. The Kubernetes
manifests and the compose stack are checked in tests/deploy/."""

from __future__ import annotations

from pathlib import Path

from monitor.core.config import load

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_and_points_at_a_real_cluster() -> None:
    cfg = load(ROOT / "deploy/config/cascade-monitor.toml", environ={})
    assert not cfg.uses_embedded_broker
    assert cfg.kafka.replication_factor == 3
    assert cfg.enabled_exchanges() == ["binance", "bybit"]
    assert cfg.ws_url("binance") == "wss://fstream.binance.com/market"
    assert [r.name for r in cfg.alerts.rules] == ["cascade-risk", "btc-long-liquidations"]
    sinks = {x.name: x for x in cfg.alerts.sinks}
    assert {x.kind for x in sinks.values()} == {"json", "slack", "pagerduty"}
    assert all(x.url is None for x in sinks.values())  # secrets from the environment only
