"""Deribit JSON-RPC websocket, as the simulator speaks it. Pure module (sans-I/O).

Path ``/ws/api/v2`` (anything else: HTTP 404). Client requests (docs/venues.md §5), each
answered ``{"jsonrpc":"2.0","id":<id>,"result":...}`` or ``{"jsonrpc":"2.0","id":<id>,"error":
{"code":..,"message":..}}``:

* ``public/subscribe`` ``{"channels": [...]}``: result = the channels subscribed. Served channels:
  ``trades.<INSTRUMENT>.100ms`` and ``ticker.<INSTRUMENT>.100ms`` (``.agg2`` is accepted but
  carries nothing); ``raw`` is refused whole with code 13778
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
``SOL_USDC-PERPETUAL`` (linear, amount in SOL, lot 0.1, tick 0.01), DOGEUSDT ->
``DOGE_USDC-PERPETUAL`` (linear, amount in DOGE, lot 1, tick 0.00001).

Trades: the trades of one instrument within a 100 ms wall-clock window, in one notification at
the window's end; ``trade_seq`` counts per instrument from 1, ``direction`` is the taker side.
A scenario liquidation is a trade carrying ``liquidation``: alternately ``T`` (the liquidated
party took: direction sell for a long) and ``M`` (it was the maker: direction buy for a long),
per instrument. Such a trade is in the ledger as a SentTrade and a SentLiquidation (USD notional:
``amount`` for inverse instruments, ``amount * price`` for linear).

Market context (``ticker.<INSTRUMENT>.100ms``; only with a price path, ``DeribitFeed(price_at)``, as
the server builds it from the scenario): pushed on an instrument's scenario event when at least
``TICKER_PUSH_MS`` (100 ms, the channel's aggregation) passed since its previous ticker, as one
notification whose ``data`` is the full ticker object (Deribit sends every field each time, in the
documented ``incremental_ticker`` snapshot layout, keys sorted), valued at the event's scenario
time ``t``, ``timestamp`` its wall time. With ``g`` the drawdown (0 calm, 1 at the scenario's full
drop):

* ``mark_price``: the path at ``t`` to one decimal more than the tick (Deribit's marks are not on
  the tick grid); ``index_price`` (and ``estimated_delivery_price``) the path plus a spot premium
  of ``INDEX_PREMIUM`` x ``g`` (the perpetual trades at a discount in the fall);
* ``current_funding``: ``FUNDING_CALM`` falling by ``FUNDING_CRASH`` x ``g`` (per 8 hours, 8
  decimals); ``funding_8h`` (trailing) lags it at ``g / 2``;
* ``open_interest``: ``OI_USD_START`` growing ``OI_DRIFT_PER_S`` per scenario second, shrinking by
  ``OI_CRASH_DROP`` x ``g``; in USD (whole multiples of the contract size) for the inverse
  perpetuals, in SOL on the lot grid for ``SOL_USDC-PERPETUAL``;
* ``best_bid/ask_price`` the mark floored/ceiled to the tick, ``last_price`` the last trade sent
  (null before one), ``stats`` the high, low, change and volume (base and USD) of the trades sent,
  ``min_price``/``max_price`` a 2 % band, ``settlement_price`` the start price, ``state`` open.

Tickers are not market items: they are not in the ledger.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.clientplan import Connection, chunks, compact_json
from monitor.simulator.events import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import InstrumentSpec
from monitor.simulator.ledger import SentItem, SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec

VENUE: Final = "deribit"
PATH: Final = "/ws/api/v2"
WINDOW_MS: Final = 100
MIN_HEARTBEAT_S: Final = 10
VERSION: Final = "1.2.26"
_CHANNEL_RE: Final = re.compile(
    r"^(?:trades|ticker)\.[A-Z0-9]+(?:_[A-Z]+)?-[A-Z0-9]+\.(100ms|agg2|raw)$"
)
TICKER_PUSH_MS: Final = 100
INDEX_PREMIUM: Final = 0.0015  # index above the mark by up to 15 bp at the scenario's full drop
FUNDING_CALM: Final = 0.0001  # per 8 hours
FUNDING_CRASH: Final = -0.0005  # added at full drawdown (g = 1)
OI_USD_START: Final = {"BTCUSDT": 9.0e8, "ETHUSDT": 2.5e8, "SOLUSDT": 1.5e7, "DOGEUSDT": 5.0e6}
OI_DRIFT_PER_S: Final = 2e-5
OI_CRASH_DROP: Final = 0.2
PRICE_BAND: Final = 0.02  # min_price / max_price around the mark
BOOK_AMOUNT_INVERSE: Final = 25_000  # USD at the best bid and ask
BOOK_AMOUNT_LINEAR: Final = 50.0  # base coin at the best bid and ask


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
    # Linear, amount in DOGE (the name says so); tick 0.00001 and lot 1 DOGE are UNVERIFIED.
    "DOGEUSDT": DeribitInstrument(
        "DOGE_USDC-PERPETUAL",
        InstrumentSpec("DOGE_USDC-PERPETUAL", 0.34, 0.11, 5, 1, 0, 1, 0, 0),
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


class _Stats:
    __slots__ = ("first", "high", "last", "low", "volume", "volume_usd")

    def __init__(self, price: float) -> None:
        self.first = self.high = self.low = self.last = price
        self.volume = 0.0  # base coin
        self.volume_usd = 0.0


class DeribitFeed:
    """Scenario events -> 100 ms trade notifications, liquidations flagged on their trades; with a
    price path (``price_at(venue_symbol, t)``, ``Scenario.price_at``) also ticker notifications."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._stats: dict[str, _Stats] = {}  # instrument -> its trades so far
        self._ticker_ms: dict[str, int] = {}  # instrument -> wall ms of its last ticker
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
        if self._price_at is None:
            return []
        return self._ticker(inst, event, now_ms)

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
        self._count(name, price, amount / price if inst.inverse else amount)
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

    def _count(self, name: str, price: float, base: float) -> None:
        st = self._stats.get(name)
        if st is None:
            st = self._stats[name] = _Stats(price)
        st.high, st.low, st.last = max(st.high, price), min(st.low, price), price
        st.volume += base
        st.volume_usd += base * price

    # ---- ticker --------------------------------------------------------------------------------

    def _ticker(self, inst: DeribitInstrument, ev: SimEvent, now_ms: int) -> list[Outgoing]:
        last = self._ticker_ms.get(inst.name)
        if last is not None and now_ms - last < TICKER_PUSH_MS:
            return []
        self._ticker_ms[inst.name] = now_ms
        channel = f"ticker.{inst.name}.100ms"
        payload = {"jsonrpc": "2.0", "method": "subscription",
                   "params": {"channel": channel, "data": self.ticker_data(inst, ev, now_ms)}}  # fmt: skip
        return [Outgoing((channel,), orjson.dumps(payload), (), ())]  # not in the ledger

    def ticker_data(self, inst: DeribitInstrument, ev: SimEvent, now_ms: int) -> dict[str, Any]:
        """The ticker object of ``inst`` at the scenario time of ``ev`` (see the module doc)."""
        assert self._price_at is not None
        spec = inst.spec
        path = self._price_at(ev.venue_symbol, ev.t)
        g = max(0.0, 1.0 - path / spec.start_price) / spec.drop
        decimals = spec.price_decimals + 1
        mark = round(path, decimals)
        index = round(path * (1.0 + INDEX_PREMIUM * g), decimals)
        oi_usd = (
            OI_USD_START[ev.venue_symbol]
            * (1.0 + OI_DRIFT_PER_S * ev.t)
            * (1.0 - OI_CRASH_DROP * g)
        )
        if inst.inverse:
            oi: float = max(1, round(oi_usd / inst.contract_usd)) * inst.contract_usd
            book: float = BOOK_AMOUNT_INVERSE
        else:
            oi = spec.round_qty(oi_usd / path)
            book = BOOK_AMOUNT_LINEAR
        st = self._stats.get(inst.name)
        stats: dict[str, Any] = {"high": None, "low": None, "price_change": None, "volume": 0.0,
                                 "volume_usd": 0.0}  # fmt: skip
        if st is not None:
            stats = {"high": st.high, "low": st.low,
                     "price_change": round((st.last / st.first - 1.0) * 100.0, 4) + 0.0,
                     "volume": round(st.volume, 8), "volume_usd": round(st.volume_usd, 2)}  # fmt: skip
        return {
            "best_ask_amount": book,
            "best_ask_price": spec.round_price(mark, "ceil"),
            "best_bid_amount": book,
            "best_bid_price": spec.round_price(mark, "floor"),
            "current_funding": round(FUNDING_CALM + FUNDING_CRASH * g, 8) + 0.0,
            "estimated_delivery_price": index,
            "funding_8h": round(FUNDING_CALM + FUNDING_CRASH * g / 2.0, 8) + 0.0,
            "index_price": index,
            "instrument_name": inst.name,
            "last_price": None if st is None else st.last,
            "mark_price": mark,
            "max_price": spec.round_price(mark * (1.0 + PRICE_BAND), "floor"),
            "min_price": spec.round_price(mark * (1.0 - PRICE_BAND), "ceil"),
            "open_interest": oi,
            "settlement_price": spec.start_price,
            "state": "open",
            "stats": stats,
            "timestamp": now_ms,
        }


def _new_session(path: str, conn_id: str) -> DeribitSession:
    return DeribitSession(conn_id)


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: ``public/set_heartbeat`` (30 s), then each instrument's ``trades`` and
    ``ticker`` (100ms) channels, 64 a request, ids from 2; no socket without instruments."""
    if not syms:
        return []
    chans = [f"trades.{s}.100ms" for s in syms] + [f"ticker.{s}.100ms" for s in syms]

    def request(rid: int, method: str, params: dict[str, Any]) -> str:
        return compact_json({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})

    frames = [request(1, "public/set_heartbeat", {"interval": 30})]
    frames += [request(2 + i, "public/subscribe", {"channels": c})
               for i, c in enumerate(chunks(chans, 64))]  # fmt: skip
    return [Connection("public", base, tuple(frames))]


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=route,
    new_session=_new_session,
    new_feed=DeribitFeed,
    new_feed_for=lambda scenario: DeribitFeed(scenario.price_at),  # tickers from its price path
    tick_s=1.0,
    activity=0.3,
    scenario_order=7,
    in_default_scenario=False,
    venue_symbol=lambda symbol: INSTRUMENTS[symbol].name if symbol in INSTRUMENTS else None,
    liquidations_as_trades=True,  # a liquidation is a trade flagged ``liquidation``
    client_plan=client_plan,
    rest_paths=(),
)
