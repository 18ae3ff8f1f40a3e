"""REST polling: URLs spread over the interval, events to the sink, failures counted."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry

from monitor.core.errors import ParseError
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event, MarketContext
from producers.poller import Poller, PollSource
from tests.producers.httpvenue import http_venue


class _OpenInterest:
    def poll_urls(self, rest_base: str) -> list[str]:
        return [f"{rest_base}/oi?symbol=A", f"{rest_base}/oi?symbol=B"]

    def parse_poll(self, url: str, body: bytes, received_ns: int) -> list[Event]:
        doc = orjson.loads(body)
        if "oi" not in doc:
            raise ParseError("bad_shape", url)
        return [MarketContext("x", "A-USDT-PERP", "A", None, None, None, None, doc["oi"], None,
                              1000, received_ns)]  # fmt: skip


async def test_rounds_poll_every_url_and_count_failures() -> None:
    assert isinstance(_OpenInterest(), PollSource)
    sunk: list[Event] = []
    registry = CollectorRegistry()
    with http_venue() as venue:
        venue.answers = [(200, b'{"oi": 1.5}'), (500, b"busy"), (200, b'{"nope": 1}'),
                         (200, b'{"oi": 2.5}')]  # fmt: skip
        poller = Poller("x", _OpenInterest(), venue.base, sunk.extend,
                        ProducerMetrics(registry), interval_s=0.02)  # fmt: skip
        poller.start()
        try:
            await poller.wait_rounds(2, timeout_s=10)
        finally:
            await poller.stop()
    assert venue.paths[:4] == ["/oi?symbol=A", "/oi?symbol=B"] * 2
    assert [e.open_interest_base for e in sunk[:2]] == [1.5, 2.5]  # type: ignore[union-attr]
    sample = registry.get_sample_value
    assert sample("cascade_rest_polls_total", {"exchange": "x", "outcome": "error"}) == 2
    assert (sample("cascade_rest_polls_total", {"exchange": "x", "outcome": "ok"}) or 0) >= 2
