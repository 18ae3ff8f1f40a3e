"""What a simulated venue still sends under a fault (monitor/simulator/faults.py): a muted channel
drops exactly the payloads of its kind, a garbled frame no longer parses."""

from __future__ import annotations

import gzip

import orjson
import pytest

from monitor.simulator import faults
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing

LIQ = Outgoing(("btcusdt@forceOrder",), b'{"e":"forceOrder"}', (1,),
               (SentLiquidation("binance", "BTCUSDT", "long", "0.1", "90000", 1),))  # fmt: skip
TRADE = Outgoing(("btcusdt@aggTrade",), b'{"e":"aggTrade"}', (2,),
                 (SentTrade("binance", "BTCUSDT", "buy", "0.1", "90000", 1, "7"),))  # fmt: skip
MARK = Outgoing(("btcusdt@markPrice",), b'{"e":"markPriceUpdate"}', (), ())


def test_a_muted_channel_drops_only_its_payloads() -> None:
    outs = [LIQ, TRADE, MARK]
    assert [faults.kind_of(o) for o in outs] == ["liquidation", "trade", "context"]
    assert faults.passing(faults.NONE, outs) == outs
    assert faults.passing(faults.Fault(muted=frozenset({"liquidation"})), outs) == [TRADE, MARK]
    both = faults.Fault(muted=frozenset({"trade", "context"}))
    assert faults.passing(both, outs) == [LIQ]
    with pytest.raises(ValueError, match="unknown kind"):
        faults.Fault(muted=frozenset({"funding"}))


def test_a_garbled_frame_does_not_parse() -> None:
    text = b'{"e":"aggTrade","s":"BTCUSDT","p":"90000.1","q":"0.5"}'
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(faults.garble(text))
    packed = gzip.compress(text)  # binary venues: a cut gzip stream
    with pytest.raises(EOFError):
        gzip.decompress(faults.garble(packed))
