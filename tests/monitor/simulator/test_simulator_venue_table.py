"""The server's generic venue mechanisms: REST answers, binary frames, ticking sessions."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request
from collections.abc import Collection

import pytest
from websockets.asyncio.client import connect

from monitor.simulator import server
from monitor.simulator.ledger import canonical_symbol
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.venues import binance
from monitor.simulator.wire import Outgoing, Reply, VenueSpec


class _TickSession:
    """Says hello on every tick, closes after the third; echoes nothing."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.ticks = 0

    @property
    def subscriptions(self) -> Collection[str]:
        return ()

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        return Reply()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return []

    def tick(self, now_s: float) -> Reply:
        self.ticks += 1
        if self.ticks > 3:
            return Reply(close=(4000, "enough"))
        return Reply(frames=(b"\x1f\x8b-tick-%d" % self.ticks,))


def _rest(path: str) -> tuple[int, bytes] | None:
    if path == "/api/instruments?type=SWAP":
        return 200, b'{"data":[{"id":"BTC"}]}'
    return None


@pytest.fixture
def test_venue(monkeypatch: pytest.MonkeyPatch) -> VenueSpec:
    spec = dataclasses.replace(
        binance.SPEC,
        base_path="/ws",
        route=lambda path: None if path == "/ws" else (404, "no\n"),
        new_session=lambda path, conn_id: _TickSession(conn_id),
        binary=True,
        tick_s=0.02,
        rest=_rest,
    )
    monkeypatch.setattr(server, "SPECS", {"binance": spec})
    return spec


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


async def test_rest_binary_frames_and_ticks(test_venue: VenueSpec) -> None:
    scenario = crash_scenario(duration_s=2.0, venues=("binance",))
    async with server.ExchangeSimulator(scenario) as sim:
        base = sim.rest_url("binance")
        assert sim.url("binance") == base.replace("http://", "ws://") + "/ws"
        status, ctype, body = await asyncio.to_thread(_get, base + "/api/instruments?type=SWAP")
        assert (status, ctype, body) == (200, "application/json", b'{"data":[{"id":"BTC"}]}')
        status, _, _ = await asyncio.to_thread(_get, base + "/api/unknown")
        assert status == 404  # not a REST path: the route refuses it like any other path
        async with connect(sim.url("binance")) as ws:
            frames = [await ws.recv() for _ in range(3)]
            assert frames == [b"\x1f\x8b-tick-1", b"\x1f\x8b-tick-2", b"\x1f\x8b-tick-3"]
            await ws.wait_closed()
            assert ws.close_code == 4000 and ws.close_reason == "enough"


def test_a_scenario_venue_without_a_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "SPECS", {"binance": binance.SPEC})
    with pytest.raises(ValueError, match=r"no protocol for venue\(s\) \['bybit'\]"):
        server.ExchangeSimulator(crash_scenario(duration_s=2.0))


@pytest.mark.parametrize(
    ("venue_symbol", "expected"),
    [
        ("BTCUSDT", "BTC-USDT-PERP"),
        ("BTC-USDT", "BTC-USDT-PERP"),
        ("ETH_USDT", "ETH-USDT-PERP"),
        ("SOL-USDT-SWAP", "SOL-USDT-PERP"),
        ("XBTUSD", "BTC-USD-PERP"),
        ("PF_XBTUSD", "BTC-USD-PERP"),
        ("ETH-PERPETUAL", "ETH-USD-PERP"),
        ("BTC", "BTC-USD-PERP"),
    ],
)
def test_canonical_symbol_of_every_venue_spelling(venue_symbol: str, expected: str) -> None:

    assert canonical_symbol(venue_symbol) == expected
