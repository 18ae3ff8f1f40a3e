"""Kraken Futures websocket (``/ws/v1``), as the simulator speaks it. Pure module (sans-I/O).

Path ``/ws/v1`` (anything else: HTTP 404). Client messages (exchange-feeds.md s10):

* ``{"event":"subscribe","feed":"trade","product_ids":[...]}`` -> ``{"event":"subscribed",
  "feed":"trade","product_ids":[...]}``, then one ``trade_snapshot`` per product (empty: the
  simulator keeps no history). ``{"event":"subscribe","feed":"heartbeat"}`` -> ``subscribed``
  (the simulator sends no heartbeat messages; trades keep the connection busy).
  ``unsubscribe`` likewise (``unsubscribed``). An unknown feed: ``{"event":"error","message":
  "Invalid feed"}``; an unknown product: ``"Invalid product id"``; bad JSON: ``"Json Error"``.

Products: BTCUSDT -> ``PF_XBTUSD`` (tick 0.5, qty lot 0.0001 BTC), ETHUSDT -> ``PF_ETHUSD``
(tick 0.1, lot 0.001), SOLUSDT -> ``PF_SOLUSD`` (tick 0.01, lot 0.01); ``qty`` in base coin.

Trades: one ``trade`` message per scenario event, ``seq`` counting per product from 1,
``side`` the taker side. A scenario liquidation is a trade of ``type`` ``liquidation`` whose taker
is the liquidated position's closing order (sell for a long). The feed does not say which side
was liquidated, so its ledger item is a SentLiquidation with side ``unknown`` (and a SentTrade).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.instruments import InstrumentSpec
from monitor.simulator.ledger import SentItem, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec, stable_uuid

VENUE: Final = "kraken"
PATH: Final = "/ws/v1"
PRODUCTS: Final = {
    "BTCUSDT": InstrumentSpec("PF_XBTUSD", 95000.0, 0.06, 1, 5, 4, 1, 0.0, 0.0),
    "ETHUSDT": InstrumentSpec("PF_ETHUSD", 3300.0, 0.08, 1, 1, 3, 1, 0.0, 0.0),
    "SOLUSDT": InstrumentSpec("PF_SOLUSD", 190.0, 0.11, 2, 1, 2, 1, 0.0, 0.0),
}
_IDS: Final = frozenset(p.venue_symbol for p in PRODUCTS.values())


def product(venue_symbol: str) -> InstrumentSpec:
    try:
        return PRODUCTS[venue_symbol]
    except KeyError:
        raise ValueError(f"no Kraken Futures product for {venue_symbol!r}") from None


def route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, "Not Found")


class KrakenSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._streams: dict[str, None] = {}  # "trade:<product>", "heartbeat"

    @property
    def subscriptions(self) -> Collection[str]:
        return self._streams.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._streams for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _event("error", message="Json Error")
        if not isinstance(req, dict) or req.get("event") not in ("subscribe", "unsubscribe"):
            return _event("error", message="Invalid event")
        sub = req["event"] == "subscribe"
        feed = req.get("feed")
        done = "subscribed" if sub else "unsubscribed"
        if feed == "heartbeat":
            self._toggle("heartbeat", sub)
            return Reply((_dumps({"event": done, "feed": feed}),), None, True)
        if feed != "trade":
            return _event("error", message="Invalid feed")
        ids = req.get("product_ids")
        if not isinstance(ids, list) or not ids or not all(i in _IDS for i in ids):
            return _event("error", message="Invalid product id")
        for pid in ids:
            self._toggle(f"trade:{pid}", sub)
        frames = [_dumps({"event": done, "feed": feed, "product_ids": ids})]
        if sub:
            frames += [
                _dumps({"feed": "trade_snapshot", "product_id": p, "trades": []}) for p in ids
            ]
        return Reply(tuple(frames), None, True)

    def _toggle(self, stream: str, on: bool) -> None:
        if on:
            self._streams[stream] = None
        else:
            self._streams.pop(stream, None)


def _dumps(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def _event(event: str, **fields: Any) -> Reply:
    return Reply((_dumps({"event": event, **fields}),))


class KrakenFeed:
    """Scenario events -> one ``trade`` message each; liquidations typed ``liquidation``."""

    def __init__(self) -> None:
        self._keys = itertools.count()
        self._seq: dict[str, int] = {}

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        spec = product(event.venue_symbol)
        pid = spec.venue_symbol
        seq = self._seq.get(pid, 0) + 1
        self._seq[pid] = seq
        price, qty = spec.round_price(event.price), spec.round_qty(event.qty)
        uid = stable_uuid(VENUE, pid, str(seq))
        if isinstance(event, SimTrade):
            side, kind = event.taker_side, "fill"
        else:
            side, kind = ("sell" if event.liquidated_side == "long" else "buy"), "liquidation"
        item = {"feed": "trade", "product_id": pid, "uid": uid, "side": side, "type": kind,
                "seq": seq, "time": now_ms, "qty": qty, "price": price}  # fmt: skip
        qty_text, price_text = spec.qty_text(qty, strip=True), spec.price_text(price, strip=True)
        sent: tuple[SentItem, ...] = (
            SentTrade(VENUE, pid, side, qty_text, price_text, now_ms, uid),
        )
        if isinstance(event, SimLiquidation):
            sent += (SentLiquidation(VENUE, pid, "unknown", qty_text, price_text, now_ms),)
        keys = tuple(next(self._keys) for _ in sent)
        return [Outgoing((f"trade:{pid}",), orjson.dumps(item), keys, sent)]

    def next_deadline_ms(self) -> int | None:
        return None

    def flush(self, now_ms: int) -> list[Outgoing]:
        return []


def _new_session(path: str, conn_id: str) -> KrakenSession:
    return KrakenSession(conn_id)


SPEC: Final = VenueSpec(
    name=VENUE, base_path=PATH, route=route, new_session=_new_session, new_feed=KrakenFeed
)
