"""BitMEX realtime API, as the simulator speaks it. Pure module (sans-I/O).

Path ``/realtime`` (anything else: HTTP 404); REST ``GET /api/v1/instrument/active`` answers the
instrument list. Client messages (docs/venues.md §4):

* text ``ping`` -> text ``pong``;
* ``{"op":"subscribe","args":[...]}``: per arg ``{"success":true,"subscribe":<arg>,"request":
  <request>}`` then the table's ``partial`` (empty: the simulator has no history). Topics:
  ``liquidation`` (every symbol), ``trade`` (every symbol), ``trade:<SYMBOL>``,
  ``instrument:<SYMBOL>`` (its ``partial`` is the row, sent with the first push after subscribing).
  An unknown topic or one already subscribed: ``{"status":400,"error":...,"meta":{},"request":
  <request>}`` and the remaining args are not processed. ``unsubscribe`` likewise
  (``"unsubscribe":<arg>``).

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

Instrument rows (market context; only with a price path, ``BitmexFeed(scenario.price_at)``): on an
event of the symbol, at most once per ``INSTRUMENT_PUSH_MS`` (1 s, BitMEX's mark cadence), the
values at the event's scenario time ``t``: ``markPrice`` = ``fairPrice`` the path to 2 decimals,
``indicativeSettlePrice`` (the index) the path plus a spot premium growing to ``INDEX_PREMIUM``
with the drawdown ``g`` (0 calm, 1 at the scenario's full drop); ``fundingRate`` ``FUNDING_RATE``
(fixed for the interval, as announced), ``indicativeFundingRate`` falling from ``FUNDING_CALM`` by
``FUNDING_CRASH`` x ``g``; ``fundingTimestamp`` the next of 04:00/12:00/20:00 UTC;
``openInterest`` contracts: ``OI_USD_START`` (USD, at the start price) growing ``OI_DRIFT_PER_S``
per scenario second and shrinking by ``OI_CRASH_DROP`` x ``g`` (inverse: 1 USD per contract;
linear: base / size), ``openValue`` its value in the settlement unit (XBt, USDt); ``lastPrice`` the
last trade. A connection's first push of the topic is the ``partial`` (the whole row, instrument
metadata included), the next ones ``update`` deltas: ``symbol``, the fields whose value changed,
``timestamp`` (a push with no change is not sent). Instrument rows are not in the ledger.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator import instruments as scenario_instruments
from monitor.simulator.clientplan import Connection, chunks, compact_json
from monitor.simulator.events import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import InstrumentSpec
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import (
    Outgoing,
    Reply,
    SnapshotOutgoing,
    VenueSpec,
    snapshot_or_delta,
    stable_uuid,
)

VENUE: Final = "bitmex"
PATH: Final = "/realtime"
REST_INSTRUMENTS: Final = "/api/v1/instrument/active"
LIMIT_OFFSET: Final = 0.005
UPDATE_AFTER_MS: Final = 200
DELETE_AFTER_MS: Final = 1000
INSTRUMENT_PUSH_MS: Final = 1000
MARK_DECIMALS: Final = 2
INDEX_PREMIUM: Final = 0.0005  # index above the mark by up to 5 bp at the full drop
FUNDING_RATE: Final = 0.0001  # the coming settlement's rate, fixed during the interval
FUNDING_CALM: Final = 0.0001  # indicativeFundingRate in the calm ...
FUNDING_CRASH: Final = -0.0004  # ... plus this at full drawdown (g = 1)
FUNDING_INTERVAL_MS: Final = 8 * 3600 * 1000
FUNDING_OFFSET_MS: Final = 4 * 3600 * 1000  # settlements at 04:00, 12:00, 20:00 UTC
OI_USD_START: Final = {"BTCUSDT": 4.0e8, "ETHUSDT": 6.0e7, "SOLUSDT": 1.5e7}
OI_DRIFT_PER_S: Final = 2e-5
OI_CRASH_DROP: Final = 0.2
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
    {"liquidation", "trade"}
    | {f"{t}:{i.symbol}" for i in INSTRUMENTS.values() for t in ("trade", "instrument")}
)


@dataclass(frozen=True, slots=True)
class InstrumentOutgoing(SnapshotOutgoing):
    """One instrument push: ``payload`` is the ``update`` delta, ``snapshot`` the ``partial`` (the
    whole row at the same moment), for the connections whose first push of the topic this is."""


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
        self._primed: set[str] = set()  # instrument topics that had their partial

    @property
    def subscriptions(self) -> Collection[str]:
        return self._topics.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        if type(out) is InstrumentOutgoing:
            return snapshot_or_delta(out, self._topics.keys(), self._primed)
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
                self._primed.discard(arg)
                table, _, sym = arg.partition(":")
                keys = ["orderID"] if table == "liquidation" else []
                frames.append(orjson.dumps({"success": True, "subscribe": arg, "request": req}))
                if table != "instrument":  # its partial is the row, with the first push
                    frames.append(orjson.dumps({"table": table, "action": "partial", "keys": keys,
                                                "filter": {"symbol": sym} if sym else {},
                                                "data": []}))  # fmt: skip
            else:
                self._topics.pop(arg, None)
                self._primed.discard(arg)
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
    """Scenario events -> trade inserts and forced-order lifecycles; with a price path
    (``Scenario.price_at``), instrument rows."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._keys = itertools.count()
        self._orders = itertools.count(1)
        self._later: list[tuple[int, int, bytes]] = []  # (due ms, order, payload): heap
        self._rows: dict[str, dict[str, Any]] = {}  # symbol -> market fields as last pushed
        self._pushed_ms: dict[str, int] = {}
        self._last_trade: dict[str, float] = {}

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        inst = instrument(event.venue_symbol)
        if isinstance(event, SimTrade):
            out = self._trade(inst, event, now_ms)
        else:
            out = self._liquidation(inst, event, now_ms)
        return [out, *self._instrument(inst, event, now_ms)]

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
        self._last_trade[inst.symbol] = price
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

    def _instrument(
        self, inst: BitmexInstrument, event: SimEvent, now_ms: int
    ) -> list[InstrumentOutgoing]:
        sym = inst.symbol
        last = self._pushed_ms.get(sym)
        if self._price_at is None or (last is not None and now_ms - last < INSTRUMENT_PUSH_MS):
            return []
        spec = scenario_instruments.instrument(event.venue_symbol)
        path = self._price_at(event.venue_symbol, event.t)
        g = max(0.0, 1.0 - path / spec.start_price) / spec.drop
        mark = round(path, MARK_DECIMALS)
        oi_usd = (OI_USD_START[event.venue_symbol] * (1.0 + OI_DRIFT_PER_S * event.t)
                  * (1.0 - OI_CRASH_DROP * g))  # fmt: skip
        if inst.inverse:
            contracts = round(oi_usd / inst.size)
            value = round(contracts * abs(inst.multiplier) / mark)  # XBt
        else:
            contracts = round(oi_usd / spec.start_price / inst.size)
            value = round(contracts * inst.multiplier * mark)  # USDt
        interval, offset = FUNDING_INTERVAL_MS, FUNDING_OFFSET_MS
        funding_ms = ((now_ms - offset) // interval + 1) * interval + offset
        fields: dict[str, Any] = {
            "fundingTimestamp": iso(funding_ms),
            "fundingRate": FUNDING_RATE,
            "indicativeFundingRate": round(FUNDING_CALM + FUNDING_CRASH * g, 6) + 0.0,
            "openInterest": contracts,
            "openValue": value,
            "fairPrice": mark,
            "markPrice": mark,
            "indicativeSettlePrice": round(path * (1.0 + INDEX_PREMIUM * g), MARK_DECIMALS),
        }
        if sym in self._last_trade:
            fields["lastPrice"] = self._last_trade[sym]
        previous = self._rows.get(sym, {})
        changed = {k: v for k, v in fields.items() if previous.get(k) != v}
        if not changed:
            return []
        self._rows[sym] = fields
        self._pushed_ms[sym] = now_ms
        stamp = iso(now_ms)
        row = {**inst.row(), "fundingInterval": "2000-01-01T08:00:00.000Z", **fields,
               "fairMethod": "FundingRate", "markMethod": "FairPrice", "timestamp": stamp}  # fmt: skip
        partial = {"table": "instrument", "action": "partial", "keys": ["symbol"],
                   "filter": {"symbol": sym}, "data": [row]}  # fmt: skip
        update = {"table": "instrument", "action": "update",
                  "data": [{"symbol": sym, **changed, "timestamp": stamp}]}  # fmt: skip
        return [
            InstrumentOutgoing(
                (f"instrument:{sym}",), orjson.dumps(update), (), (), orjson.dumps(partial)
            )
        ]


def _new_session(path: str, conn_id: str) -> BitmexSession:
    return BitmexSession(conn_id)


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: ``liquidation``, then ``trade:`` and ``instrument:`` of each symbol, 50 topics
    a request."""
    topics = ["liquidation"] + [f"{t}:{s}" for s in syms for t in ("trade", "instrument")]
    frames = tuple(compact_json({"op": "subscribe", "args": a}) for a in chunks(topics, 50))
    return [Connection("public", base, frames)]


SPEC: Final = VenueSpec(
    name=VENUE, base_path=PATH, route=route, new_session=_new_session, new_feed=BitmexFeed,
    new_feed_for=lambda scenario: BitmexFeed(scenario.price_at), rest=rest,
    activity=0.3, scenario_order=6, in_default_scenario=False,
    # DOGE is not listed: BitMEX's DOGEUSDT is a quanto contract margined in XBT, which the
    # adapter refuses to size
    venue_symbol=lambda symbol: INSTRUMENTS[symbol].symbol if symbol in INSTRUMENTS else None,
    liquidations_as_trades=False, client_plan=client_plan, rest_paths=(REST_INSTRUMENTS,),
)  # fmt: skip
