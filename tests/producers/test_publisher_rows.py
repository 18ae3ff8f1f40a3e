"""Rows appended to the publisher's store reach Kafka once, in order, and each ack is reported."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.core.codec import Columns
from monitor.core.config import Config
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Trade
from monitor.core.topics import ensure_topics
from producers.publisher import Publisher
from tests.producers.kafkautil import read_records

SYMBOLS = (("BTC-USDT-PERP", "BTCUSDT"), ("ETH-USDT-PERP", "ETHUSDT"))


async def test_rows_from_the_store_are_published_in_order_and_acks_reported(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = Config().with_overrides(kafka={"bootstrap_servers": kafka_bootstrap,
                                         "topic_prefix": f"r{unique}", "partitions": 2,
                                         "linger_ms": 2, "max_batch_events": 40})  # fmt: skip
    await ensure_topics(kafka_bootstrap, [cfg.topic("bybit")], 2, 1, 3600)
    pub = Publisher(cfg, "bybit", ProducerMetrics(CollectorRegistry()))
    acked: list[tuple[str, int, int]] = []

    def on_acked(record: Columns, ack_ns: int) -> None:
        acked.append((record.symbol, record.n, ack_ns))

    pub.on_acked = on_acked
    store = pub.columns
    await pub.start()
    try:
        for frame in range(50):  # as sessions parse: frames of 1..4 trades, two symbols
            store.begin()
            for k in range(frame % 4 + 1):
                symbol, venue_symbol = SYMBOLS[(frame + k) % 2]
                store.trade(symbol, venue_symbol, f"{frame}-{k}", "buy", 100.0, 1.0, "base", 1.0,
                            1.0, 100.0, None, 1760000000000 + frame, frame)  # fmt: skip
        total = sum(f % 4 + 1 for f in range(50))
        await pub.flush(timeout_s=30)
        assert pub.published_events == total and pub.buffered == 0
    finally:
        await pub.stop()
    records = await read_records(kafka_bootstrap, cfg.topic("bybit"), total)
    for symbol, venue_symbol in SYMBOLS:
        got = [e for _, key, b in records if key == symbol.encode() for e in b.events()]
        assert all(isinstance(e, Trade) and e.venue_symbol == venue_symbol for e in got)
        want = [f"{f}-{k}" for f in range(50) for k in range(f % 4 + 1)
                if SYMBOLS[(f + k) % 2][0] == symbol]  # fmt: skip
        assert [e.trade_id for e in got] == want  # type: ignore[union-attr]
    assert len(acked) == len(records) and sum(n for _, n, _ in acked) == total
    assert all(n <= 40 for _, n, _ in acked)
