"""Bitget UTA (v3) public stream, as the simulator speaks it. Pure module (sans-I/O).

Path ``/v3/ws/public`` (anything else: HTTP 404). Client messages (docs/venues.md §7):

* the text ``ping`` -> the text ``pong``;
* ``{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"},
  {"instType":"usdt-futures","topic":"publicTrade","symbol":"BTCUSDT"}]}`` -> one ack per arg,
  ``{"event":"subscribe","arg":{...},"connId":"<id>"}``. A request is all-or-nothing; failures are
  ``{"event":"error","arg":..,"code":..,"msg":..,"op":..}`` (v2 error shape and codes, UNVERIFIED
  for v3): not JSON 30002, unknown op 30003, bad args or args over 4096 bytes 30016, an unknown
  topic, instType or symbol 30001 (with the offending ``arg``).
* ``unsubscribe`` likewise. Not modelled: the 2-minute no-ping close.

Topics served for ``usdt-futures`` (``coin-futures``/``usdc-futures`` are accepted, carry nothing):

* liquidation: SAMPLED as documented: per wall-clock second ``[k*1000, (k+1)*1000)``, per pair,
  only the liquidation with the largest quantity for longs and for shorts (the first one on a tie);
  all kept records in one push at the end of the second. The rest is never sent (and never enters
  the ledger). As the Liquidation Channel page documents them: ``side`` is the liquidated
  POSITION's side ("buy" = a long was liquidated), ``amount`` is in quote coin (the USDT notional,
  6 decimals); ``price`` the scenario price on the tick grid.
* publicTrade: the trades of one symbol in the same 100 ms tick, one ``update`` push at the end of
  the tick; ``S`` the taker side, ``v`` base size, ``i`` a per-symbol counter, ``T`` ms string.
* ticker (market context; only with a price path, ``BitgetFeed(scenario.price_at)``): the UTA
  futures ticker, one ``snapshot`` push (every field, as documented) with one item, sent on an event
  of the symbol at least ``TICKER_PUSH_MS`` (300 ms; Bitget: every 300-400 ms on change) after the
  symbol's previous push; push ``ts`` the wall clock (an integer, as documented), no ``ts`` nor
  ``symbol`` in the item. Values at the event's scenario time ``t``: ``markPrice`` the path on the
  tick grid; ``indexPrice`` the path plus a spot premium growing to ``INDEX_PREMIUM`` with the
  drawdown ``g`` (0 calm, 1 at the scenario's full drop); ``fundingRate`` (6 decimals)
  ``FUNDING_CALM`` falling by ``FUNDING_CRASH`` x ``g``; ``nextFundingTime`` the next 8-hour UTC
  boundary (ms string); ``openInterest`` in base coin on the lot grid: ``OI_USD_START`` at the start
  price, growing ``OI_DRIFT_PER_S`` per scenario second, shrinking by ``OI_CRASH_DROP`` x ``g``;
  ``lastPrice`` the last trade (else the mark), ``bid1Price``/``ask1Price`` the ticks around the
  path, 24 h fields from the start price, the marks pushed and the trades sent. Tickers are not
  market items: not in the ledger.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.clientplan import Connection, chunks, compact_json, packed
from monitor.simulator.events import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import INSTRUMENTS, fmt_decimal, instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec

VENUE: Final = "bitget"
PATH: Final = "/v3/ws/public"
INST_TYPE: Final = "usdt-futures"
INST_TYPES: Final = ("usdt-futures", "coin-futures", "usdc-futures")
LIQUIDATION_WINDOW_MS: Final = 1000
TRADE_TICK_MS: Final = 100
MAX_ARGS_BYTES: Final = 4096  # UNVERIFIED for v3 (v2 docs)
AMOUNT_DECIMALS: Final = 6
LIQUIDATION_STREAM: Final = "liquidation:usdt-futures"
TICKER_PUSH_MS: Final = 300
INDEX_PREMIUM: Final = 0.0005  # index above the mark by up to 5 bp at the full drop
FUNDING_CALM: Final = 0.0001
FUNDING_CRASH: Final = -0.0004  # added at full drawdown (g = 1)
FUNDING_INTERVAL_MS: Final = 8 * 3600 * 1000
OI_USD_START: Final = {"BTCUSDT": 1.5e9, "ETHUSDT": 6.0e8, "SOLUSDT": 2.0e8, "DOGEUSDT": 1.2e8}
OI_DRIFT_PER_S: Final = 2e-5
OI_CRASH_DROP: Final = 0.2


def trade_stream(symbol: str, inst_type: str = INST_TYPE) -> str:
    return f"publicTrade:{inst_type}:{symbol}"


def ticker_stream(symbol: str, inst_type: str = INST_TYPE) -> str:
    return f"ticker:{inst_type}:{symbol}"


class BitgetSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._streams: dict[str, None] = {}  # ordered set

    @property
    def subscriptions(self) -> Collection[str]:
        return self._streams.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._streams for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        if (message == b"ping") if isinstance(message, bytes) else (message == "ping"):
            return Reply(frames=(b"pong",))
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _error(None, 30002, "Illegal request", None)
        if not isinstance(req, dict):
            return _error(None, 30002, "Illegal request", None)
        op = req.get("op")
        if op not in ("subscribe", "unsubscribe"):
            return _error(None, 30003, f"Invalid op: {op}", None)
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            return _error(None, 30016, "Param error: args", op)
        if len(orjson.dumps(args)) > MAX_ARGS_BYTES:
            return _error(None, 30016, f"Param error: args over {MAX_ARGS_BYTES} bytes", op)
        streams = []
        for arg in args:
            stream = _stream(arg)
            if stream is None:
                msg = (f"instType:{arg.get('instType')},topic:{arg.get('topic')},"
                       f"symbol:{arg.get('symbol')} doesn't exist")  # fmt: skip
                return _error(arg, 30001, msg, op)
            streams.append(stream)
        if op == "subscribe":
            self._streams.update(dict.fromkeys(streams))
        else:
            for s in streams:
                self._streams.pop(s, None)
        acks = tuple(
            orjson.dumps({"event": op, "arg": arg, "connId": self.conn_id}) for arg in args
        )
        return Reply(frames=acks, subscriptions_changed=True)


def _error(arg: dict[str, Any] | None, code: int, msg: str, op: str | None) -> Reply:
    body: dict[str, Any] = {"event": "error"}
    if arg is not None:
        body["arg"] = arg
    body.update(code=code, msg=msg)
    if op is not None:
        body["op"] = op
    return Reply(frames=(orjson.dumps(body),))


def _stream(arg: dict[str, Any]) -> str | None:
    inst_type, topic, symbol = arg.get("instType"), arg.get("topic"), arg.get("symbol")
    if inst_type not in INST_TYPES:
        return None
    if topic == "liquidation" and symbol is None:
        return f"liquidation:{inst_type}"
    known = inst_type != INST_TYPE or symbol in INSTRUMENTS  # other segments: any symbol
    if topic == "publicTrade" and isinstance(symbol, str) and known:
        return trade_stream(symbol, inst_type)
    if topic == "ticker" and isinstance(symbol, str) and known:
        return ticker_stream(symbol, inst_type)
    return None


_Trade = tuple[int, dict[str, Any], SentTrade]
_Liq = tuple[float, int, dict[str, Any], SentLiquidation]  # (base qty, key, record, ledger item)


class _TickerState:
    __slots__ = ("high", "last", "low", "pushed_ms", "turnover", "volume_lots")

    def __init__(self, start: float) -> None:
        self.pushed_ms: int | None = None
        self.high = self.low = start
        self.last: float | None = None  # last trade price
        self.volume_lots = 0  # traded base quantity, in lots
        self.turnover = 0.0  # USDT


class BitgetFeed:
    """Scenario events -> per-tick publicTrade pushes, the sampled 1 s liquidation push and, with a
    price path (``Scenario.price_at``), throttled ticker pushes."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._keys = itertools.count()
        self._trades: dict[tuple[str, int], list[_Trade]] = {}  # (symbol, tick end) -> trades
        # window end -> (symbol, liquidated side) -> the largest liquidation so far
        self._liqs: dict[int, dict[tuple[str, str], _Liq]] = {}
        self._trade_seq: dict[str, int] = {}
        self._tickers: dict[str, _TickerState] = {}

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        key = next(self._keys)
        if isinstance(event, SimTrade):
            end = (now_ms // TRADE_TICK_MS + 1) * TRADE_TICK_MS
            self._trades.setdefault((event.venue_symbol, end), []).append(
                (key, *self._trade(event, now_ms))
            )
        else:
            end = (now_ms // LIQUIDATION_WINDOW_MS + 1) * LIQUIDATION_WINDOW_MS
            window = self._liqs.setdefault(end, {})
            slot = (event.venue_symbol, event.liquidated_side)
            kept = window.get(slot)
            if kept is None or event.qty > kept[0]:  # largest quantity per pair and side; ties: 1st
                window[slot] = (event.qty, key, *self._liquidation(event, now_ms))
        return self._ticker(event, now_ms) if self._price_at is not None else []

    def next_deadline_ms(self) -> int | None:
        return min([end for _, end in self._trades] + list(self._liqs), default=None)

    def flush(self, now_ms: int) -> list[Outgoing]:
        out: list[tuple[int, Outgoing]] = []
        for bucket in [b for b in self._trades if b[1] <= now_ms]:
            sym, end = bucket
            trades = self._trades.pop(bucket)
            arg = {"instType": INST_TYPE, "topic": "publicTrade", "symbol": sym}
            payload = {"action": "update", "arg": arg, "data": [t[1] for t in trades],
                       "ts": now_ms}  # fmt: skip
            keys, items = tuple(t[0] for t in trades), tuple(t[2] for t in trades)
            out.append((end, Outgoing((trade_stream(sym),), orjson.dumps(payload), keys, items)))
        for end in [e for e in self._liqs if e <= now_ms]:
            kept = list(self._liqs.pop(end).values())
            payload = {"data": [k[2] for k in kept],
                       "arg": {"instType": INST_TYPE, "topic": "liquidation"},
                       "action": "update", "ts": now_ms}  # fmt: skip
            keys, liqs = tuple(k[1] for k in kept), tuple(k[3] for k in kept)
            out.append((end, Outgoing((LIQUIDATION_STREAM,), orjson.dumps(payload), keys, liqs)))
        out.sort(key=lambda x: x[0])
        return [o for _, o in out]

    def _trade(self, tr: SimTrade, now_ms: int) -> tuple[dict[str, Any], SentTrade]:
        sym = tr.venue_symbol
        spec = instrument(sym)
        seq = self._trade_seq.get(sym, 0) + 1
        self._trade_seq[sym] = seq
        price, qty, trade_id = spec.price_text(tr.price), spec.qty_text(tr.qty), str(seq)
        state = self._ticker_state(sym)
        state.last = tr.price
        state.volume_lots += round(float(qty) * 10**spec.qty_decimals)
        state.turnover += float(qty) * tr.price
        item = {"i": trade_id, "p": price, "v": qty, "S": tr.taker_side, "T": str(now_ms),
                "L": trade_id, "isRPI": "no"}  # fmt: skip
        return item, SentTrade(VENUE, sym, tr.taker_side, qty, price, now_ms, trade_id)

    @staticmethod
    def _liquidation(liq: SimLiquidation, now_ms: int) -> tuple[dict[str, Any], SentLiquidation]:
        sym = liq.venue_symbol
        spec = instrument(sym)
        long = liq.liquidated_side == "long"
        price_x = spec.round_price(liq.price)
        qty_x = spec.round_qty(liq.qty)
        price = spec.price_text(price_x)
        side = "buy" if long else "sell"  # the position side: "buy" is the long itself
        amount = fmt_decimal(qty_x * price_x, AMOUNT_DECIMALS)  # quote coin
        # "inverse" with multiplier 1: the ledger notional is the amount itself (USDT at par)
        sent = SentLiquidation(
            VENUE, sym, liq.liquidated_side, amount, price, now_ms, multiplier=1.0, inverse=True
        )
        record = {"symbol": sym, "side": side, "price": price, "amount": amount,
                  "ts": str(now_ms)}  # fmt: skip
        return record, sent

    # ---- ticker (market context) ------------------------------------------------------------

    def _ticker_state(self, sym: str) -> _TickerState:
        state = self._tickers.get(sym)
        if state is None:
            state = self._tickers[sym] = _TickerState(instrument(sym).start_price)
        return state

    def _ticker(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        assert self._price_at is not None
        sym = event.venue_symbol
        state = self._ticker_state(sym)
        if state.pushed_ms is not None and now_ms - state.pushed_ms < TICKER_PUSH_MS:
            return []
        state.pushed_ms = now_ms
        spec = instrument(sym)
        path = self._price_at(sym, event.t)
        mark = spec.round_price(path)
        state.high, state.low = max(state.high, mark), min(state.low, mark)
        g = max(0.0, 1.0 - path / spec.start_price) / spec.drop
        bid = spec.round_price(path, "floor")
        oi = (OI_USD_START[sym] / spec.start_price * (1.0 + OI_DRIFT_PER_S * event.t)
              * (1.0 - OI_CRASH_DROP * g))  # fmt: skip
        depth = spec.qty_text(spec.round_qty(spec.trade_notional_usd / spec.start_price))
        item = {
            "highPrice24h": spec.price_text(state.high),
            "lowPrice24h": spec.price_text(state.low),
            "openPrice24h": spec.price_text(spec.start_price),
            "lastPrice": spec.price_text(mark if state.last is None else state.last),
            "turnover24h": fmt_decimal(state.turnover, AMOUNT_DECIMALS),
            "volume24h": spec.qty_text(state.volume_lots / 10**spec.qty_decimals),
            "bid1Price": spec.price_text(bid),
            "ask1Price": spec.price_text(bid + spec.tick),
            "bid1Size": depth,
            "ask1Size": depth,
            "price24hPcnt": f"{mark / spec.start_price - 1.0 + 0.0:.5f}",
            "indexPrice": spec.price_text(spec.round_price(path * (1.0 + INDEX_PREMIUM * g))),
            "markPrice": spec.price_text(mark),
            "fundingRate": f"{round(FUNDING_CALM + FUNDING_CRASH * g, 6) + 0.0:.6f}",
            "nextFundingTime": str((now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS),
            "openInterest": spec.qty_text(spec.round_qty(oi)),
        }
        payload = {"data": [item], "arg": {"instType": INST_TYPE, "symbol": sym, "topic": "ticker"},
                   "action": "snapshot", "ts": now_ms}  # fmt: skip
        return [Outgoing((ticker_stream(sym),), orjson.dumps(payload), (), ())]


def _route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, f"Not Found: {path}\n")


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: ``liquidation`` of usdt-futures, then each symbol's ``publicTrade`` and
    ``ticker``; 50 channels a socket (``public-2``, ...), args of at most 4096 bytes a request."""
    args = [{"instType": INST_TYPE, "topic": "liquidation"}] + [
        {"instType": INST_TYPE, "topic": t, "symbol": s}
        for s in syms
        for t in ("publicTrade", "ticker")
    ]
    out = []
    for i, shard in enumerate(chunks(args, 50)):
        frames = tuple(
            compact_json({"op": "subscribe", "args": b}) for b in packed(shard, MAX_ARGS_BYTES)
        )
        out.append(Connection("public" if i == 0 else f"public-{i + 1}", base, frames))
    return out


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=_route,
    new_session=lambda path, conn_id: BitgetSession(conn_id),
    new_feed=BitgetFeed,
    new_feed_for=lambda scenario: BitgetFeed(scenario.price_at),  # tickers from its price path
    activity=0.5,
    scenario_order=3,
    in_default_scenario=False,
    venue_symbol=lambda symbol: symbol if symbol in INSTRUMENTS else None,
    liquidations_as_trades=False,
    client_plan=client_plan,
    rest_paths=(),
)
