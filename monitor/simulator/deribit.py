"""Deribit JSON-RPC websocket, as the simulator speaks it. Pure module (sans-I/O).

Path ``/ws/api/v2`` (anything else: HTTP 404). Client requests (exchange-feeds.md s5), each
answered ``{"jsonrpc":"2.0","id":<id>,"result":...}`` or ``{"jsonrpc":"2.0","id":<id>,"error":
{"code":..,"message":..}}``:

* ``public/subscribe`` ``{"channels": [...]}``: result = the channels subscribed. Served channels:
  ``trades.<INSTRUMENT>.100ms`` and ``.agg2``; ``raw`` is refused whole with code 13778
  ``raw_subscriptions_not_available_for_unauthorized`` (public clients are not authorized); a
  malformed channel with -32602 ``Invalid params`` (simulator choice).
* ``public/unsubscribe``: result = the channels removed.
* ``public/set_heartbeat`` ``{"interval": >= 10}``: ``"ok"``; then every ``interval`` seconds
  (``tick``) the server sends ``{"jsonrpc":"2.0","method":"heartbeat","params":{"type":
  "test_request"}}`` and closes the connection (1000, ``test_request not answered``) at the next
  one if no ``public/test`` request arrived in between. ``public/disable_heartbeat`` stops it.
* ``public/test``: ``{"version":"1.2.26"}``. Anything else: -32601 ``Method not found``.

Instruments: BTCUSDT -> ``BTC-PERPETUAL`` (inverse, amount in USD, multiples of 10, tick 0.5),
ETHUSDT -> ``ETH-PERPETUAL`` (inverse, amount in USD, multiples of 1, tick 0.05), SOLUSDT ->
``SOL_USDC-PERPETUAL`` (linear, amount in SOL, lot 0.1, tick 0.01).

Trades: the trades of one instrument within a 100 ms wall-clock window, in one notification at
the window's end; ``trade_seq`` counts per instrument from 1, ``direction`` is the taker side.
A scenario liquidation is a trade carrying ``liquidation``: alternately ``T`` (the liquidated
party took: direction sell for a long) and ``M`` (it was the maker: direction buy for a long),
per instrument. Such a trade is in the ledger as a SentTrade and a SentLiquidation (USD notional:
``amount`` for inverse instruments, ``amount * price`` for linear).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.instruments import InstrumentSpec
from monitor.simulator.ledger import SentItem, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec

VENUE: Final = "deribit"
PATH: Final = "/ws/api/v2"
WINDOW_MS: Final = 100
MIN_HEARTBEAT_S: Final = 10
VERSION: Final = "1.2.26"
_CHANNEL_RE: Final = re.compile(r"^trades\.[A-Z0-9]+(?:_[A-Z]+)?-[A-Z0-9]+\.(100ms|agg2|raw)$")


@dataclass(frozen=True, slots=True)
class DeribitInstrument:
    name: str
    spec: InstrumentSpec  # price grid (and lot grid for linear)
    inverse: bool
    contract_usd: int = 0  # inverse: amount is a multiple of this many USD


INSTRUMENTS: Final = {
    "BTCUSDT": DeribitInstrument(
        "BTC-PERPETUAL", InstrumentSpec("BTC-PERPETUAL", 95000.0, 0.06, 1, 5, 0, 10, 0, 0), True, 10
    ),
    "ETHUSDT": DeribitInstrument(
        "ETH-PERPETUAL", InstrumentSpec("ETH-PERPETUAL", 3300.0, 0.08, 2, 5, 0, 1, 0, 0), True, 1
    ),
    "SOLUSDT": DeribitInstrument(
        "SOL_USDC-PERPETUAL",
        InstrumentSpec("SOL_USDC-PERPETUAL", 190.0, 0.11, 2, 1, 1, 1, 0, 0),
        False,
    ),
}


def instrument(venue_symbol: str) -> DeribitInstrument:
    try:
        return INSTRUMENTS[venue_symbol]
    except KeyError:
        raise ValueError(f"no Deribit instrument for {venue_symbol!r}") from None


def route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, "Not Found")


class DeribitSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._channels: dict[str, None] = {}  # ordered set
        self._interval: float | None = None
        self._next_beat = 0.0
        self._awaiting_test = False

    @property
    def subscriptions(self) -> Collection[str]:
        return self._channels.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._channels for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _error(None, -32700, "Parse error")
        if not isinstance(req, dict):
            return _error(None, -32600, "Invalid Request")
        rid = req.get("id")
        method = req.get("method")
        raw_params = req.get("params")
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        if method == "public/test":
            self._awaiting_test = False
            return _result(rid, {"version": VERSION})
        if method == "public/set_heartbeat":
            interval = params.get("interval")
            if not isinstance(interval, int | float) or isinstance(interval, bool):
                return _error(rid, -32602, "Invalid params")
            if interval < MIN_HEARTBEAT_S:
                return _error(rid, -32602, "Invalid params")
            self._interval = float(interval)
            self._next_beat = now_s + self._interval
            self._awaiting_test = False
            return _result(rid, "ok")
        if method == "public/disable_heartbeat":
            self._interval = None
            return _result(rid, "ok")
        if method in ("public/subscribe", "public/unsubscribe"):
            return self._subscribe(method, rid, params.get("channels"))
        return _error(rid, -32601, "Method not found")

    def _subscribe(self, method: str, rid: Any, chans: Any) -> Reply:
        if not isinstance(chans, list) or not chans or not all(isinstance(c, str) for c in chans):
            return _error(rid, -32602, "Invalid params")
        for c in chans:
            m = _CHANNEL_RE.match(c)
            if m is None:
                return _error(rid, -32602, "Invalid params")
            if m.group(1) == "raw":
                return _error(rid, 13778, "raw_subscriptions_not_available_for_unauthorized")
        if method == "public/subscribe":
            self._channels.update(dict.fromkeys(chans))
            return Reply((_dumps(rid, "result", list(dict.fromkeys(chans))),), None, True)
        removed = [c for c in dict.fromkeys(chans) if self._channels.pop(c, 0) is None]
        return Reply((_dumps(rid, "result", removed),), None, True)

    def tick(self, now_s: float) -> Reply:
        if self._interval is None or now_s < self._next_beat:
            return Reply()
        if self._awaiting_test:
            return Reply(close=(1000, "test_request not answered"))
        self._awaiting_test = True
        self._next_beat = now_s + self._interval
        beat = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
        return Reply((orjson.dumps(beat),))


def _dumps(rid: Any, key: str, value: Any) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": rid, key: value})


def _result(rid: Any, value: Any) -> Reply:
    return Reply((_dumps(rid, "result", value),))


def _error(rid: Any, code: int, message: str) -> Reply:
    return Reply((_dumps(rid, "error", {"message": message, "code": code}),))


class DeribitFeed:
    """Scenario events -> 100 ms trade notifications, liquidations flagged on their trades."""

    def __init__(self) -> None:
        self._keys = itertools.count()
        self._trade_ids = itertools.count(1)
        self._seq: dict[str, int] = {}
        self._flags: dict[str, int] = {}  # instrument -> liquidations so far (T/M alternation)
        # (instrument, window end) -> [(keys, item, ledger items)]
        self._pending: dict[tuple[str, int], list[tuple[tuple[int, ...], dict[str, Any],
                                                        tuple[SentItem, ...]]]] = {}  # fmt: skip

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        inst = instrument(event.venue_symbol)
        end = (now_ms // WINDOW_MS + 1) * WINDOW_MS
        self._pending.setdefault((inst.name, end), []).append(self._item(inst, event, now_ms))
        return []

    def next_deadline_ms(self) -> int | None:
        return min((end for _, end in self._pending), default=None)

    def flush(self, now_ms: int) -> list[Outgoing]:
        out = []
        for bucket in sorted((b for b in self._pending if b[1] <= now_ms), key=lambda b: b[1]):
            entries = self._pending.pop(bucket)
            channel = f"trades.{bucket[0]}.100ms"
            payload = {"jsonrpc": "2.0", "method": "subscription",
                       "params": {"channel": channel, "data": [e[1] for e in entries]}}  # fmt: skip
            keys = tuple(k for e in entries for k in e[0])
            items = tuple(i for e in entries for i in e[2])
            out.append(Outgoing((channel,), orjson.dumps(payload), keys, items))
        return out

    def _item(
        self, inst: DeribitInstrument, ev: SimEvent, now_ms: int
    ) -> tuple[tuple[int, ...], dict[str, Any], tuple[SentItem, ...]]:
        name, spec = inst.name, inst.spec
        price = spec.round_price(ev.price)
        if inst.inverse:
            amount: float = max(1, round(ev.qty * price / inst.contract_usd)) * inst.contract_usd
            contracts = amount / inst.contract_usd
        else:
            amount = spec.round_qty(ev.qty)
            contracts = amount
        flag = None
        if isinstance(ev, SimTrade):
            direction = ev.taker_side
        else:
            n = self._flags.get(name, 0)
            self._flags[name] = n + 1
            flag = "T" if n % 2 == 0 else "M"
            liquidated_sells = ev.liquidated_side == "long"  # a long is closed by a sell
            direction = "sell" if liquidated_sells == (flag == "T") else "buy"
        seq = self._seq.get(name, 0) + 1
        self._seq[name] = seq
        trade_id = str(next(self._trade_ids))
        item: dict[str, Any] = {
            "trade_seq": seq, "trade_id": trade_id, "timestamp": now_ms, "tick_direction": 0,
            "price": price, "mark_price": price, "index_price": price, "instrument_name": name,
            "direction": direction, "amount": amount, "contracts": contracts,
        }  # fmt: skip
        qty_text = str(amount) if inst.inverse else spec.qty_text(amount, strip=True)
        price_text = spec.price_text(price, strip=True)
        sent: tuple[SentItem, ...] = (
            SentTrade(VENUE, name, direction, qty_text, price_text, now_ms, trade_id),
        )
        if flag is not None:
            item["liquidation"] = flag
            assert isinstance(ev, SimLiquidation)
            sent += (SentLiquidation(VENUE, name, ev.liquidated_side, qty_text, price_text,
                                     now_ms, 1.0, inst.inverse),)  # fmt: skip
        keys = tuple(next(self._keys) for _ in sent)
        return keys, item, sent


def _new_session(path: str, conn_id: str) -> DeribitSession:
    return DeribitSession(conn_id)


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=route,
    new_session=_new_session,
    new_feed=DeribitFeed,
    tick_s=1.0,
)
