from __future__ import annotations

from monitor.core.topics import ensure_topics


async def test_ensure_topics_creates_partitions_and_is_idempotent(
    kafka_bootstrap: str, unique: str
) -> None:
    names = [f"t{unique}.events.binance", f"t{unique}.events.bybit"]
    first = await ensure_topics(kafka_bootstrap, names, 4, 1, 3600)
    assert first == {names[0]: 4, names[1]: 4}
    again = await ensure_topics(kafka_bootstrap, names, 4, 1, 3600)
    assert again == first
