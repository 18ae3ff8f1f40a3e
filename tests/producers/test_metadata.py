"""Instrument metadata loading against a real local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.core.errors import ParseError
from monitor.core.metrics import ProducerMetrics
from monitor.core.symbols import Instrument, SymbolTable
from producers.base import InstrumentSource
from producers.metadata import InstrumentLoader, MetadataError
from tests.producers.httpvenue import HttpVenue, http_venue


@pytest.fixture
def venue() -> Iterator[tuple[HttpVenue, str]]:
    with http_venue() as v:
        yield v, v.base


class _Source:
    """A minimal contract venue: {"data": [{"id": "BTC_USDT", "mult": 0.0001}]}."""

    def __init__(self) -> None:
        self.table = SymbolTable(strict=True)

    def instrument_urls(self, rest_base: str) -> list[str]:
        return [f"{rest_base}/instruments"]

    def load_instruments(self, url: str, body: bytes) -> int:
        try:
            rows = orjson.loads(body)["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ParseError("bad_instruments", url) from None
        self.table.replace(
            Instrument(r["id"], r["id"].replace("_", "-") + "-PERP", "B", "Q", r["mult"])
            for r in rows
        )
        return len(rows)


def _body(*pairs: tuple[str, float]) -> bytes:
    return orjson.dumps({"data": [{"id": i, "mult": m} for i, m in pairs]})


def _loader(
    source: _Source, base: str, registry: CollectorRegistry, **kw: float
) -> InstrumentLoader:
    metrics = ProducerMetrics(registry)
    opts = {"refresh_s": 3600.0, "timeout_s": 10.0} | kw
    return InstrumentLoader("gate", source, base, metrics, **opts)


def test_source_satisfies_the_runtime_protocol() -> None:
    assert isinstance(_Source(), InstrumentSource)


async def test_start_waits_for_a_complete_load_retrying_errors(
    venue: tuple[HttpVenue, str],
) -> None:
    state, base = venue
    state.answers = [(503, b"busy"), (200, b"not json"), (200, _body(("BTC_USDT", 0.0001)))]
    source = _Source()
    registry = CollectorRegistry()
    loader = _loader(source, base, registry)
    await loader.start()
    try:
        assert state.requests == 3
        assert source.table.resolve("BTC_USDT").contract_multiplier == 0.0001
        sample = registry.get_sample_value
        assert (
            sample("cascade_instrument_loads_total", {"exchange": "gate", "outcome": "error"}) == 2
        )
        assert sample("cascade_instrument_loads_total", {"exchange": "gate", "outcome": "ok"}) == 1
        assert sample("cascade_instruments", {"exchange": "gate"}) == 1
    finally:
        await loader.stop()


async def test_start_gives_up_with_a_clear_error(venue: tuple[HttpVenue, str]) -> None:
    state, base = venue
    state.answers = [(500, b"down")]
    loader = _loader(_Source(), base, CollectorRegistry(), timeout_s=1.0)
    with pytest.raises(
        MetadataError, match=r"gate: no instrument metadata from http://127\.0\.0\.1"
    ):
        await loader.start()


async def test_failed_refresh_keeps_the_previous_instruments(venue: tuple[HttpVenue, str]) -> None:
    state, base = venue
    state.answers = [(200, _body(("BTC_USDT", 0.0001))), (200, b"{}")]
    source = _Source()
    loader = _loader(source, base, CollectorRegistry())
    assert await loader.load_once() == 1
    with pytest.raises(MetadataError, match="not an instrument list"):
        await loader.load_once()
    assert source.table.resolve("BTC_USDT").contract_multiplier == 0.0001
