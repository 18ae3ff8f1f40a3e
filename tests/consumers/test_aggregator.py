"""Risk snapshots and the asset view: the record codec, the combination rules, and the whole path
consumers -> risk topic -> aggregator -> /metrics on a real broker."""

from __future__ import annotations

import math

import orjson
import pytest
from prometheus_client import CollectorRegistry

from consumers.aggregator import ASSET_METRICS, AssetAggregator
from consumers.service import ConsumerService
from monitor.core.codec import encode_batch
from monitor.core.errors import CodecError
from monitor.core.riskrecord import (
    FIELDS,
    MAX_FIELDS,
    SUM_FIELDS,
    RiskRecord,
    asset_of,
    asset_views,
    decode_risk,
    encode_risk,
)
from monitor.core.topics import ensure_exchange_topics
from tests.consumers.consumer_refs import liq, scrape, trade, value
from tests.consumers.test_consumer_service import _cfg, produce


def rec(exchange: str, symbol: str, published_ms: int, **values: float) -> RiskRecord:
    return decode_risk(encode_risk(exchange, symbol, 1.0, published_ms, values))


def test_round_trip_nan_as_null_and_bad_records() -> None:
    r = rec("okx", "BTC-USDT-PERP", 5, score=0.5, vpin=math.nan)
    assert (r.exchange, r.symbol, r.asset, r.published_ms) == ("okx", "BTC-USDT-PERP", "BTC", 5)
    assert r.values["score"] == 0.5 and math.isnan(r.values["vpin"])
    raw = orjson.loads(encode_risk("okx", "BTC-USDT-PERP", 1.0, 5, {"vpin": math.nan}))
    assert raw["values"] == {"vpin": None} and raw["asset"] == "BTC"
    with pytest.raises(CodecError):
        encode_risk("okx", "X", 1.0, 5, {"nope": 1.0})
    for bad in (b"nope", b"[]", orjson.dumps({"v": 2}),
                orjson.dumps({"v": 1, "exchange": "x", "symbol": "y", "t": 1, "published_ms": 1,
                              "values": {"score": "high"}})):  # fmt: skip
        with pytest.raises(CodecError):
            decode_risk(bad)
    newer = orjson.dumps({"v": 1, "exchange": "x", "symbol": "A-B", "t": 1, "published_ms": 1,
                          "values": {"score": 0.1, "future_field": 3}})  # fmt: skip
    assert decode_risk(newer).values == {"score": 0.1}
    assert asset_of("1000PEPE-USDT-PERP") == "1000PEPE"


def test_asset_view_sums_flows_takes_the_worst_level_and_drops_stale() -> None:
    records = [
        rec("binance", "BTC-USDT-PERP", 1000, liq_rate_long_60s=100.0, score=0.3, vpin=0.7),
        rec("okx", "BTC-USDT-PERP", 1000, liq_rate_long_60s=50.0, score=0.9, vpin=math.nan),
        rec("bybit", "BTC-USDT-PERP", 1000, liq_rate_long_60s=math.nan, score=0.1),
        rec("bybit", "BTC-USDC-PERP", 1000, liq_rate_long_60s=5.0),
        rec("okx", "ETH-USDT-PERP", 1000, liq_rate_long_60s=7.0, score=0.2),
        rec("htx", "BTC-USDT-PERP", 1, liq_rate_long_60s=1e9, score=1.0),  # stale
    ]
    views = {v.asset: v for v in asset_views(records, now_ms=2000, stale_ms=1500)}
    btc, eth = views["BTC"], views["ETH"]
    assert btc.venues == 4 and eth.venues == 1
    assert btc.values["liq_rate_long_60s"] == 155.0
    assert btc.values["score"] == 0.9 and btc.worst == ("okx", "BTC-USDT-PERP")
    assert btc.values["vpin"] == 0.7
    assert math.isnan(btc.values["at_risk_long_1pct"])  # nobody said
    assert set(btc.values) == set(FIELDS) == set(SUM_FIELDS) | set(MAX_FIELDS)
    assert set(ASSET_METRICS) == set(FIELDS)


async def test_consumers_publish_and_the_aggregator_combines_venues(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique).with_overrides(consumer={"risk_publish_s": 0.2})
    await ensure_exchange_topics(cfg, ["binance", "okx"])
    t = 1_700_000_000_000
    records = {
        "binance": [("BTC-USDT-PERP", [liq("BTC-USDT-PERP", "long", 6000.0, t),
                                        trade("BTC-USDT-PERP", "sell", 100.0, 1000.0, t)])],
        "okx": [("BTC-USDT-PERP", [liq("BTC-USDT-PERP", "long", 3000.0, t, exchange="okx"),
                                    trade("BTC-USDT-PERP", "sell", 100.0, 500.0, t,
                                          exchange="okx")])],
    }  # fmt: skip
    registry = CollectorRegistry()
    agg = AssetAggregator(cfg, registry)
    await agg.start()
    services = [ConsumerService(cfg, x, CollectorRegistry()) for x in records]
    try:
        for svc in services:
            await svc.start()
        for x, recs in records.items():
            await produce(kafka_bootstrap, cfg.topic(x), [(s, encode_batch(e)) for s, e in recs])
        for svc in services:
            await svc.wait_processed(2, timeout_s=30)
        # one consumer's clock runs on: read both at the same event time for the expected sum
        await agg.wait_records(2 * 2, timeout_s=30)  # two snapshots from each consumer at least
        got = {v.asset: v for v in agg.views()}["BTC"]
        assert got.venues == 2
        now = max(svc.state.now_s() for svc in services)
        per_venue = [svc.state.risk_rows(now, 10)[0][2]["liq_rate_long_60s"] for svc in services]
        # the snapshots were taken a moment earlier than ``now``: rates only decayed since
        assert got.values["liq_rate_long_60s"] >= sum(per_venue)
        assert got.values["liq_rate_long_60s"] <= (6000.0 + 3000.0) / 60.0
        s = scrape(registry)
        assert value(s, "cascade_asset_venues", asset="BTC") == 2.0
        assert value(s, "cascade_asset_long_liquidation_rate_60s_usd_per_second", asset="BTC")
        assert value(s, "cascade_asset_open_interest_usd", asset="BTC") is None  # never sent
    finally:
        for svc in services:
            await svc.stop()
        await agg.stop()
    assert all(svc.risk_published >= 1 for svc in services)
