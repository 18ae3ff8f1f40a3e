"""Venue replays and restarts add nothing; genuine identical liquidations count twice.

Each case runs real venue frames through the real path a live pipeline takes: a producer
(the venue's adapter and the session's duplicate filter, both new after a restart), the record
codec, and a consumer (``RecordIngest``: the applied-id window and the risk state). Totals are
read from the consumer's state.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from consumers.ingest import RecordIngest
from monitor.core.codec import encode_batch
from monitor.core.config import Config, ExchangeConfig, load
from monitor.core.schema import Event, Liquidation
from producers.base import InstrumentSource, VenueAdapter
from producers.registry import ADAPTERS
from producers.session import Deduplicator

CFG: Config = load(environ={})
T0_MS = 1_760_000_000_000
OKX_INSTRUMENTS = {
    "code": "0",
    "data": [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "ctVal": "0.01", "ctMult": "1",
         "ctValCcy": "BTC", "ctType": "linear", "settleCcy": "USDT", "state": "live",
         "uly": "BTC-USDT", "instFamily": "BTC-USDT", "baseCcy": "", "quoteCcy": "",
         "listTime": "1", "expTime": ""},
    ],
}  # fmt: skip
BITMEX_INSTRUMENTS = [
    {"symbol": "XBTUSD", "rootSymbol": "XBT", "state": "Open", "typ": "FFWCSX",
     "underlying": "XBT", "quoteCurrency": "USD", "settlCurrency": "XBt", "isQuanto": False,
     "isInverse": True, "multiplier": -100000000, "underlyingToSettleMultiplier": -100000000,
     "quoteToSettleMultiplier": None},
]  # fmt: skip


class Producer:
    """One producer run of a venue: a new adapter and a new duplicate filter (its memory)."""

    def __init__(self, venue: str, instruments: Any = None, path: str = "") -> None:
        self.adapter: VenueAdapter = ADAPTERS[venue](ExchangeConfig())
        if instruments is not None:
            assert isinstance(self.adapter, InstrumentSource)
            url = self.adapter.instrument_urls("https://venue")[0]
            assert self.adapter.load_instruments(url, orjson.dumps(instruments)) > 0
        self.dedup = Deduplicator()
        self.replayed = 0

    def frame(self, doc: Any, at_ms: int) -> list[Event]:
        text = doc if isinstance(doc, str) else orjson.dumps(doc).decode()
        parsed = self.adapter.parse(text, at_ms * 1_000_000)
        assert parsed.errors == []
        self.replayed += len(parsed.replayed)
        return self.dedup.fresh(parsed.events)[0]


class Consumer:
    """One consumer of ``venue``: what it applied, from records the producers published."""

    def __init__(self, venue: str) -> None:
        self.ingest = RecordIngest.from_config(CFG, venue)
        self.duplicates = 0

    def publish(self, events: list[Event]) -> None:
        by_symbol: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            by_symbol[e.symbol].append(e)
        for batch in by_symbol.values():
            done = self.ingest.apply(encode_batch(batch))
            assert done.error is None
            self.duplicates += done.duplicates

    def totals(self) -> dict[tuple[str, str], tuple[int, float]]:
        """(symbol, side) -> (liquidations applied, notional USD)."""
        r = self.ingest.state.read(self.ingest.state.now_s())
        out = {}
        for i, (_, symbol) in enumerate(r.keys):
            for j, side in enumerate(("long", "short")):
                if r.liq_count[i, j]:
                    out[(symbol, side)] = (int(r.liq_count[i, j]), float(r.liq_notional[i, j]))
        return out


# ---- Bitget: a snapshot push is not new liquidations ----------------------------------------


def bitget_push(action: str, *items: dict[str, str]) -> dict[str, Any]:
    return {"arg": {"instType": "usdt-futures", "topic": "liquidation"}, "action": action,
            "data": list(items), "ts": T0_MS}  # fmt: skip


def bitget_item(side: str, amount: str, ts_ms: int) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": side, "price": "90000", "amount": amount, "ts": str(ts_ms)}


def test_bitget_snapshot_after_a_restart_adds_nothing() -> None:
    consumer = Consumer("bitget")
    first = Producer("bitget")
    consumer.publish(first.frame(bitget_push("update", bitget_item("buy", "9000", T0_MS)), T0_MS))
    before = consumer.totals()
    assert before == {("BTC-USDT-PERP", "long"): (1, 9000.0)}
    restarted = Producer("bitget")
    snapshot = bitget_push("snapshot", bitget_item("buy", "9000", T0_MS))
    consumer.publish(restarted.frame(snapshot, T0_MS + 2_000))
    assert consumer.totals() == before and restarted.replayed == 1


# ---- OKX: the first push after subscribing carries orders from before it -------------------


def okx_ack() -> dict[str, Any]:
    return {"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "connId": "a1"}  # fmt: skip


def okx_push(*details: dict[str, str]) -> dict[str, Any]:
    return {"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "data": [{"details": list(details), "instFamily": "BTC-USDT",
                      "instId": "BTC-USDT-SWAP", "instType": "SWAP", "uly": "BTC-USDT"}]}  # fmt: skip


def okx_detail(side: str, sz: str, ts_ms: int, px: str = "90000") -> dict[str, str]:
    pos = "long" if side == "sell" else "short"
    return {"bkLoss": "0", "bkPx": px, "ccy": "", "posSide": pos, "side": side, "sz": sz,
            "ts": str(ts_ms)}  # fmt: skip


def test_okx_first_push_after_a_resubscribe_adds_nothing_it_already_counted() -> None:
    consumer = Consumer("okx")
    first = Producer("okx", OKX_INSTRUMENTS)
    first.frame(okx_ack(), T0_MS)
    seen = okx_detail("sell", "10", T0_MS + 500)  # 10 contracts x 0.01 BTC x 90000 = 9000 USD
    consumer.publish(first.frame(okx_push(seen), T0_MS + 1_000))
    before = consumer.totals()
    assert before == {("BTC-USDT-PERP", "long"): (1, 9000.0)}
    # a restarted producer subscribes at +3 s; its first push repeats the order of +0.5 s and has
    # one from after the subscription
    restarted = Producer("okx", OKX_INSTRUMENTS)
    restarted.frame(okx_ack(), T0_MS + 3_000)
    new = okx_detail("buy", "2", T0_MS + 3_200)  # 1800 USD of shorts
    consumer.publish(restarted.frame(okx_push(seen, new), T0_MS + 4_000))
    assert consumer.totals() == {**before, ("BTC-USDT-PERP", "short"): (1, 1800.0)}
    assert consumer.duplicates == 1  # the repeated order, recognised by its id
    # the same order re-sent once more: the producer's own memory drops it now
    assert restarted.frame(okx_push(seen), T0_MS + 5_000) == []
    assert consumer.totals() == {**before, ("BTC-USDT-PERP", "short"): (1, 1800.0)}


# ---- BitMEX: a partial re-emits the open forced orders -------------------------------------


def bitmex(action: str, *rows: dict[str, Any]) -> dict[str, Any]:
    return {"table": "liquidation", "action": action, "data": list(rows)}


ORDER = {"orderID": "98ae1dad-6a3b-51c4-14bd-e076919e9e30", "symbol": "XBTUSD", "side": "Sell",
         "price": 90000.0, "leavesQty": 45000}  # fmt: skip


def test_bitmex_partial_and_a_reinserted_order_after_a_restart_add_nothing() -> None:
    consumer = Consumer("bitmex")
    first = Producer("bitmex", BITMEX_INSTRUMENTS)
    consumer.publish(first.frame(bitmex("insert", ORDER), T0_MS))
    before = consumer.totals()
    assert before == {("BTC-USD-PERP", "long"): (1, 45000.0)}  # 45,000 contracts of 1 USD
    restarted = Producer("bitmex", BITMEX_INSTRUMENTS)
    consumer.publish(restarted.frame(bitmex("partial", ORDER), T0_MS + 60_000))
    assert consumer.totals() == before and restarted.replayed == 1
    again = Producer("bitmex", BITMEX_INSTRUMENTS)  # no partial: the venue re-sends the insert
    consumer.publish(again.frame(bitmex("insert", ORDER), T0_MS + 61_000))
    assert consumer.totals() == before and consumer.duplicates == 1


# ---- a producer restart that re-sends what it had published --------------------------------


def bybit_push(*items: dict[str, str]) -> dict[str, Any]:
    return {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": T0_MS,
            "data": list(items)}  # fmt: skip


def bybit_item(side: str, size: str, ts_ms: int) -> dict[str, Any]:
    return {"T": ts_ms, "s": "BTCUSDT", "S": side, "v": size, "p": "90000"}


def test_a_restarted_producer_resending_a_frame_adds_nothing() -> None:
    consumer = Consumer("bybit")
    frame = bybit_push(bybit_item("Buy", "0.1", T0_MS), bybit_item("Sell", "0.2", T0_MS + 1))
    consumer.publish(Producer("bybit").frame(frame, T0_MS + 500))
    before = consumer.totals()
    assert before == {
        ("BTC-USDT-PERP", "long"): (1, 9000.0),
        ("BTC-USDT-PERP", "short"): (1, 18000.0),
    }
    consumer.publish(Producer("bybit").frame(frame, T0_MS + 700))
    assert consumer.totals() == before and consumer.duplicates == 2


# ---- genuine identical liquidations ---------------------------------------------------------


def test_two_genuine_identical_liquidations_count_twice_and_their_replay_adds_nothing() -> None:
    twin = bybit_item("Buy", "0.1", T0_MS)
    consumer = Consumer("bybit")
    producer = Producer("bybit")
    events = producer.frame(bybit_push(twin, twin), T0_MS + 500)
    assert len({e.event_id for e in events if isinstance(e, Liquidation)}) == 2
    consumer.publish(events)
    assert consumer.totals() == {("BTC-USDT-PERP", "long"): (2, 18000.0)}
    consumer.publish(Producer("bybit").frame(bybit_push(twin, twin), T0_MS + 900))
    assert consumer.totals() == {("BTC-USDT-PERP", "long"): (2, 18000.0)}


def test_two_genuine_identical_okx_orders_count_twice() -> None:
    consumer = Consumer("okx")
    producer = Producer("okx", OKX_INSTRUMENTS)
    twin = okx_detail("sell", "10", T0_MS + 100)
    consumer.publish(producer.frame(okx_push(twin, twin), T0_MS + 1_000))
    assert consumer.totals() == {("BTC-USDT-PERP", "long"): (2, 18000.0)}
