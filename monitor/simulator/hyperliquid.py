"""Hyperliquid websocket (``/ws``), as the simulator speaks it. Pure module (sans-I/O).

Path ``/ws`` (anything else: HTTP 404). Client messages (exchange-feeds.md s9):

* ``{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}`` ->
  ``{"channel":"subscriptionResponse","data":<the request>}``; ``unsubscribe`` likewise. Another
  subscription type or an unknown coin: ``{"channel":"error","data":"Invalid subscription: ..."}``
  (simulator wording); a repeated subscription: ``"Already subscribed: ..."``.
* ``{"method":"ping"}`` -> ``{"channel":"pong"}``.

Coins: BTCUSDT -> ``BTC`` (price tick 1, size 0.00001), ETHUSDT -> ``ETH`` (0.1, 0.0001),
SOLUSDT -> ``SOL`` (0.001, 0.01); prices and sizes are decimal strings.

Trades: one ``trades`` message per scenario event; ``side`` is the aggressor (``B``/``A``).
Hyperliquid has no public liquidation feed, so a scenario liquidation is sent as a plain trade
(the aggressor is the liquidated position's closing order) and recorded as a SentTrade only.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.instruments import InstrumentSpec
from monitor.simulator.ledger import SentTrade
from monitor.simulator.scenario import SimEvent, SimTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec

VENUE: Final = "hyperliquid"
PATH: Final = "/ws"
COINS: Final = {
    "BTCUSDT": InstrumentSpec("BTC", 95000.0, 0.06, 0, 1, 5, 1, 0.0, 0.0),
    "ETHUSDT": InstrumentSpec("ETH", 3300.0, 0.08, 1, 1, 4, 1, 0.0, 0.0),
    "SOLUSDT": InstrumentSpec("SOL", 190.0, 0.11, 3, 1, 2, 1, 0.0, 0.0),
}
_NAMES: Final = frozenset(c.venue_symbol for c in COINS.values())
_PONG: Final = b'{"channel":"pong"}'


def coin(venue_symbol: str) -> InstrumentSpec:
    try:
        return COINS[venue_symbol]
    except KeyError:
        raise ValueError(f"no Hyperliquid coin for {venue_symbol!r}") from None


def route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, "Not Found")


class HyperliquidSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._coins: dict[str, None] = {}

    @property
    def subscriptions(self) -> Collection[str]:
        return self._coins.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._coins for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _error("Invalid request")
        if not isinstance(req, dict):
            return _error("Invalid request")
        method, sub = req.get("method"), req.get("subscription")
        if method == "ping":
            return Reply((_PONG,))
        if method not in ("subscribe", "unsubscribe"):
            return _error(f"Unknown method: {method}")
        text = orjson.dumps(sub).decode()
        if (
            not isinstance(sub, dict)
            or sub.get("type") != "trades"
            or sub.get("coin") not in _NAMES
        ):
            return _error(f"Invalid subscription: {text}")
        name = sub["coin"]
        if method == "subscribe":
            if name in self._coins:
                return _error(f"Already subscribed: {text}")
            self._coins[name] = None
        else:
            self._coins.pop(name, None)
        body = {"channel": "subscriptionResponse", "data": {"method": method, "subscription": sub}}
        return Reply((orjson.dumps(body),), None, True)


def _error(msg: str) -> Reply:
    return Reply((orjson.dumps({"channel": "error", "data": msg}),))


class HyperliquidFeed:
    """Scenario events -> one ``trades`` message each (liquidations too, as plain trades)."""

    def __init__(self) -> None:
        self._keys = itertools.count()
        self._tids = itertools.count(1)

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        spec = coin(event.venue_symbol)
        name = spec.venue_symbol
        if isinstance(event, SimTrade):
            taker = event.taker_side
        else:
            taker = "sell" if event.liquidated_side == "long" else "buy"
        px = spec.price_text(spec.round_price(event.price), strip=True)
        sz = spec.qty_text(spec.round_qty(event.qty), strip=True)
        tid = next(self._tids) * 7_919  # any 50-bit id
        item: dict[str, Any] = {"coin": name, "side": "A" if taker == "sell" else "B", "px": px,
                                "sz": sz, "hash": f"0x{tid:064x}", "time": now_ms, "tid": tid,
                                "users": ["0x" + "1" * 40, "0x" + "2" * 40]}  # fmt: skip
        payload = orjson.dumps({"channel": "trades", "data": [item]})
        sent = SentTrade(VENUE, name, taker, sz, px, now_ms, f"{now_ms}-{tid}")
        return [Outgoing((name,), payload, (next(self._keys),), (sent,))]

    def next_deadline_ms(self) -> int | None:
        return None

    def flush(self, now_ms: int) -> list[Outgoing]:
        return []


def _new_session(path: str, conn_id: str) -> HyperliquidSession:
    return HyperliquidSession(conn_id)


SPEC: Final = VenueSpec(
    name=VENUE, base_path=PATH, route=route, new_session=_new_session, new_feed=HyperliquidFeed
)
