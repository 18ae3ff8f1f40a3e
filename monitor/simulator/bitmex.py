"""BitMEX realtime API, as the simulator speaks it. Pure module (sans-I/O).

Path ``/realtime`` (anything else: HTTP 404); REST ``GET /api/v1/instrument/active`` answers the
instrument list. Client messages (exchange-feeds.md s4):

* text ``ping`` -> text ``pong``;
* ``{"op":"subscribe","args":[...]}``: per arg ``{"success":true,"subscribe":<arg>,"request":
  <request>}`` then the table's ``partial`` (empty: the simulator has no history). Topics:
  ``liquidation`` (every symbol), ``trade`` (every symbol), ``trade:<SYMBOL>``. An unknown topic
  or one already subscribed: ``{"status":400,"error":...,"meta":{},"request":<request>}`` and the
  remaining args are not processed. ``unsubscribe`` likewise (``"unsubscribe":<arg>``).

Instruments (metadata as BitMEX publishes it; linear sizes chosen for the simulator): BTCUSDT ->
``XBTUSD`` (inverse, 1 USD per contract, lots of 100, tick 0.5), ETHUSDT -> ``ETHUSDT`` (linear,
0.000001 ETH per contract, lots of 1000, tick 0.05), SOLUSDT -> ``SOLUSDT`` (linear, 0.0001 SOL
per contract, lots of 1000, tick 0.01).

Liquidations: the forced-order lifecycle. A scenario liquidation is an ``insert`` right away
(``side`` is the order side: Sell closes a long; ``price`` a limit 0.5 % through the scenario
price; ``leavesQty`` the size in contracts), an ``update`` halving ``leavesQty`` after
``UPDATE_AFTER_MS`` and a ``delete`` after ``DELETE_AFTER_MS``. Only the insert is a ledger item
(USD notional: contracts x 1 for XBTUSD, contracts x size x price for linear). Trades: one
``insert`` per scenario trade, with ``homeNotional`` (base) and ``foreignNotional`` (quote).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.instruments import InstrumentSpec
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec, stable_uuid

VENUE: Final = "bitmex"
PATH: Final = "/realtime"
REST_INSTRUMENTS: Final = "/api/v1/instrument/active"
LIMIT_OFFSET: Final = 0.005
UPDATE_AFTER_MS: Final = 200
DELETE_AFTER_MS: Final = 1000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BitmexInstrument:
    symbol: str
    root: str
    quote: str
    inverse: bool
    multiplier: int
    to_settle: int  # underlyingToSettleMultiplier (inverse) or quoteToSettleMultiplier
    lot: int  # contracts
    spec: InstrumentSpec  # the price grid

    @property
    def size(self) -> float:
        """USD per contract (inverse) or base per contract (linear), as the adapter derives it."""
        return abs(self.multiplier / self.to_settle)

    def contracts(self, qty_base: float, price: float) -> int:
        units = qty_base * price if self.inverse else qty_base / self.size
        return max(1, round(units / self.lot)) * self.lot

    def row(self) -> dict[str, Any]:
        settle = "XBt" if self.inverse else "USDt"
        return {"symbol": self.symbol, "rootSymbol": self.root, "state": "Open", "typ": "FFWCSX",
                "quoteCurrency": self.quote, "settlCurrency": settle, "isQuanto": False,
                "isInverse": self.inverse, "multiplier": self.multiplier,
                "underlyingToSettleMultiplier": self.to_settle if self.inverse else None,
                "quoteToSettleMultiplier": None if self.inverse else self.to_settle,
                "lotSize": self.lot, "tickSize": self.spec.tick}  # fmt: skip


def _grid(name: str, decimals: int, units: int) -> InstrumentSpec:
    return InstrumentSpec(name, 1.0, 0.0, decimals, units, 0, 1, 0.0, 0.0)


INSTRUMENTS: Final = {
    "BTCUSDT": BitmexInstrument("XBTUSD", "XBT", "USD", True, -100_000_000, -100_000_000, 100,
                                _grid("XBTUSD", 1, 5)),
    "ETHUSDT": BitmexInstrument("ETHUSDT", "ETH", "USDT", False, 1, 1_000_000, 1000,
                                _grid("ETHUSDT", 2, 5)),
    "SOLUSDT": BitmexInstrument("SOLUSDT", "SOL", "USDT", False, 100, 1_000_000, 1000,
                                _grid("SOLUSDT", 2, 1)),
}  # fmt: skip
# A quanto contract, listed like the venue lists it; the adapter must refuse to size it.
_QUANTO_ROW: Final = {"symbol": "ETHUSD", "rootSymbol": "ETH", "state": "Open", "typ": "FFWCSX",
                      "quoteCurrency": "USD", "settlCurrency": "XBt", "isQuanto": True,
                      "isInverse": False, "multiplier": 100, "underlyingToSettleMultiplier": None,
                      "quoteToSettleMultiplier": 30951, "lotSize": 1, "tickSize": 0.05}  # fmt: skip
_TOPICS: Final = frozenset(
    {"liquidation", "trade"} | {f"trade:{i.symbol}" for i in INSTRUMENTS.values()}
)


def instrument(venue_symbol: str) -> BitmexInstrument:
    try:
        return INSTRUMENTS[venue_symbol]
    except KeyError:
        raise ValueError(f"no BitMEX instrument for {venue_symbol!r}") from None


def route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, "Not Found")


def rest(path: str) -> tuple[int, bytes] | None:
    if urlsplit(path).path != REST_INSTRUMENTS:
        return None
    return 200, orjson.dumps([i.row() for i in INSTRUMENTS.values()] + [_QUANTO_ROW])


class BitmexSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._topics: dict[str, None] = {}

    @property
    def subscriptions(self) -> Collection[str]:
        return self._topics.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._topics for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        if message in ("ping", b"ping"):
            return Reply((b"pong",))
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _error("Unable to parse request.", None)
        if not isinstance(req, dict):
            return _error("Unable to parse request.", None)
        op, args = req.get("op"), req.get("args")
        if op not in ("subscribe", "unsubscribe"):
            return _error(f"Unknown or unsupported operation: {op}", req)
        if isinstance(args, str):
            args = [args]
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return _error("Invalid args", req)
        frames: list[bytes] = []
        changed = False
        for arg in args:
            if arg not in _TOPICS:
                frames.append(_error(f"Unknown table: {arg}", req).frames[0])
                break
            if op == "subscribe":
                if arg in self._topics:
                    frames.append(
                        _error(f"You are already subscribed to this topic: {arg}", req).frames[0]
                    )
                    break
                self._topics[arg] = None
                table, _, sym = arg.partition(":")
                keys = ["orderID"] if table == "liquidation" else []
                frames.append(orjson.dumps({"success": True, "subscribe": arg, "request": req}))
                frames.append(orjson.dumps({"table": table, "action": "partial", "keys": keys,
                                            "filter": {"symbol": sym} if sym else {}, "data": []}))  # fmt: skip
            else:
                self._topics.pop(arg, None)
                frames.append(orjson.dumps({"success": True, "unsubscribe": arg, "request": req}))
            changed = True
        return Reply(tuple(frames), None, changed)


def _error(msg: str, req: Any) -> Reply:
    body = {"status": 400, "error": msg, "meta": {}, "request": req}
    return Reply((orjson.dumps(body),))


def iso(ms: int) -> str:
    """ms since the epoch -> ``"2025-01-27T10:00:00.123Z"``."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class BitmexFeed:
    """Scenario events -> trade inserts and forced-order lifecycles."""

    def __init__(self) -> None:
        self._keys = itertools.count()
        self._orders = itertools.count(1)
        self._later: list[tuple[int, int, bytes]] = []  # (due ms, order, payload): heap

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        inst = instrument(event.venue_symbol)
        if isinstance(event, SimTrade):
            return [self._trade(inst, event, now_ms)]
        return [self._liquidation(inst, event, now_ms)]

    def next_deadline_ms(self) -> int | None:
        return self._later[0][0] if self._later else None

    def flush(self, now_ms: int) -> list[Outgoing]:
        out = []
        while self._later and self._later[0][0] <= now_ms:
            _, _, payload = heapq.heappop(self._later)
            out.append(Outgoing(("liquidation",), payload, (), ()))
        return out

    def _trade(self, inst: BitmexInstrument, tr: SimTrade, now_ms: int) -> Outgoing:
        price = inst.spec.round_price(tr.price)
        size = inst.contracts(tr.qty, price)
        if inst.inverse:
            home, foreign = size / price, float(size)
        else:
            home = size * inst.size
            foreign = home * price
        key = next(self._keys)
        match_id = stable_uuid(VENUE, inst.symbol, str(key))
        side = "Sell" if tr.taker_side == "sell" else "Buy"
        item = {"timestamp": iso(now_ms), "symbol": inst.symbol, "side": side, "size": size,
                "price": price, "tickDirection": "ZeroPlusTick", "trdMatchID": match_id,
                "homeNotional": home, "foreignNotional": foreign}  # fmt: skip
        payload = orjson.dumps({"table": "trade", "action": "insert", "data": [item]})
        sent = SentTrade(VENUE, inst.symbol, tr.taker_side, str(size),
                         inst.spec.price_text(price, strip=True), now_ms, match_id)  # fmt: skip
        return Outgoing(("trade", f"trade:{inst.symbol}"), payload, (key,), (sent,))

    def _liquidation(self, inst: BitmexInstrument, liq: SimLiquidation, now_ms: int) -> Outgoing:
        long = liq.liquidated_side == "long"
        price = (inst.spec.round_price(liq.price * (1 - LIMIT_OFFSET), "floor") if long
                 else inst.spec.round_price(liq.price * (1 + LIMIT_OFFSET), "ceil"))  # fmt: skip
        qty = inst.contracts(liq.qty, liq.price)
        n = next(self._orders)
        oid = stable_uuid(VENUE, "order", str(n))
        sym = inst.symbol
        row = {"orderID": oid, "symbol": sym, "side": "Sell" if long else "Buy", "price": price,
               "leavesQty": qty}  # fmt: skip
        for due, action, data in (
            (
                now_ms + UPDATE_AFTER_MS,
                "update",
                {"orderID": oid, "leavesQty": qty // 2, "symbol": sym},
            ),
            (now_ms + DELETE_AFTER_MS, "delete", {"orderID": oid, "symbol": sym}),
        ):
            body = orjson.dumps({"table": "liquidation", "action": action, "data": [data]})
            heapq.heappush(self._later, (due, 2 * n + (action == "delete"), body))
        payload = orjson.dumps({"table": "liquidation", "action": "insert", "data": [row]})
        sent = SentLiquidation(VENUE, sym, liq.liquidated_side, str(qty),
                               inst.spec.price_text(price, strip=True), now_ms, inst.size,
                               inst.inverse)  # fmt: skip
        return Outgoing(("liquidation",), payload, (next(self._keys),), (sent,))


def _new_session(path: str, conn_id: str) -> BitmexSession:
    return BitmexSession(conn_id)


SPEC: Final = VenueSpec(
    name=VENUE, base_path=PATH, route=route, new_session=_new_session, new_feed=BitmexFeed,
    rest=rest,
)  # fmt: skip
