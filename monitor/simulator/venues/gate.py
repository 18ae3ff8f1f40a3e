"""Gate.io USDT futures, as the simulator speaks them. Pure module (sans-I/O).

Path ``/v4/ws/usdt`` (anything else: HTTP 404); REST on the same port:
``GET /api/v4/futures/usdt/contracts``. Requests (docs/venues.md §8):
``{"time": s, "channel": "...", "event": "subscribe"|"unsubscribe", "payload": [...]}`` ->
``{"time": s, "time_ms": ms, "channel": ..., "event": ..., "payload": [...], "error": null,
"result": {"status": "success"}}``; a refusal carries ``"error": {"code": 2, "message": ...}`` and
``"result": {"status": "fail"}`` (shape UNVERIFIED). ``{"time": s, "channel": "futures.ping"}``
-> ``{"time": s, "time_ms": ms, "channel": "futures.pong", "event": "", "result": null}``.

Channels: ``futures.public_liquidates`` (payload contracts or ``!all``), ``futures.trades`` and
``futures.tickers`` (payload contracts). Sizes are signed contracts printed as decimal strings, as
with the handshake header ``X-Gate-Size-Decimal: 1`` (the session does not see headers, so it always
does); quantities are quantized to whole contracts (``quanto_multiplier`` BTC 0.0001, ETH 0.01, SOL
1, DOGE 10), events rounding to zero are not sent. Liquidations: negative size = sell order = LONG
liquidated; the orders of a contract within a wall-clock second (``[k*1000, (k+1)*1000)`` ms) go out
in one ``update`` when the second ends, or at once when 20 are cached; item ``time`` in ms;
``price`` 0.5 % beyond the scenario price. Trades: pushed at once, negative size = taker sell,
``create_time`` (s) and ``create_time_ms``. Ledger items use the Gate spelling (``BTC_USDT``);
liquidation items carry ``multiplier`` = quanto_multiplier and ``qty_text`` the contracts.

Tickers (market context; ``GateFeed(price_at)``, what the server builds with the scenario's price
path): one ``update`` per contract on its scenario events (also those too small for a contract),
at most every ``TICKER_PUSH_MS`` (1 s; Gate's real cadence is not documented, UNVERIFIED), with
the values at the scenario time of the triggering event, ``time``/``time_ms`` its wall time, and
the documented fields in the documented order (less the BTC-settled ``volume_24h_btc`` and
``volume_24h_usd``): ``last`` the latest trade price (the mark before
any trade), ``change_percentage`` vs. the start price, ``funding_rate`` 1 bp in the calm falling
with the drawdown ``g`` (0 calm, 1 at the scenario's full drop) to -4 bp and
``funding_rate_indicative`` its value a step further, ``mark_price`` the path rounded to the tick
(without a path: the event's price), ``index_price`` the path plus a premium growing to
``INDEX_PREMIUM`` with ``g`` (two more decimals), ``total_size`` the open interest in whole
contracts (``OI_USD_START`` at the start price, drifting up ``OI_DRIFT_PER_S`` per scenario second
and shrinking by ``OI_CRASH_DROP`` x ``g``), running 24 h volumes in contracts / base / quote
since the start, ``low_24h``/``high_24h`` of ``last``, ``quanto_base_rate`` "". Tickers are not in
the ledger.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.clientplan import Connection, chunks, compact_json
from monitor.simulator.events import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import fmt_decimal, instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec

VENUE: Final = "gate"
PATH: Final = "/v4/ws/usdt"
CONTRACTS_PATH: Final = "/api/v4/futures/usdt/contracts"
LIQUIDATES: Final = "futures.public_liquidates"
TRADES: Final = "futures.trades"
TICKERS: Final = "futures.tickers"
ALL: Final = "!all"
TICKER_PUSH_MS: Final = 1000
FUNDING_CALM: Final = 0.0001
FUNDING_CRASH: Final = -0.0005  # added at full drawdown (g = 1)
FUNDING_INDICATIVE_STEP: Final = 0.1  # the indicative rate: g this much further into the crash
INDEX_PREMIUM: Final = 0.0005
OI_USD_START: Final = {"BTCUSDT": 1.0e9, "ETHUSDT": 4.0e8, "SOLUSDT": 1.2e8, "DOGEUSDT": 8.0e7}
OI_DRIFT_PER_S: Final = 2e-5
OI_CRASH_DROP: Final = 0.2
AGGREGATION_MS: Final = 1000
FLUSH_AT: Final = 20
PRICE_OFFSET: Final = 0.005
# scenario symbol -> (contract name, quanto_multiplier, decimals of the multiplier)
CONTRACTS: Final = {
    "BTCUSDT": ("BTC_USDT", 0.0001, 4),
    "ETHUSDT": ("ETH_USDT", 0.01, 2),
    "SOLUSDT": ("SOL_USDT", 1.0, 0),
    "DOGEUSDT": ("DOGE_USDT", 10.0, 0),
}


def stream(channel: str, contract: str) -> str:
    return f"{channel}|{contract}"


class GateSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._streams: dict[str, None] = {}  # "channel|contract", ordered set

    @property
    def subscriptions(self) -> Collection[str]:
        return self._streams.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._streams for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            req = None
        if not isinstance(req, dict):
            return _reply({"channel": "", "event": ""}, now_s, "request not json")
        channel, event = req.get("channel"), req.get("event")
        head: dict[str, Any] = {"channel": channel, "event": event or ""}
        if channel == "futures.ping":
            return _reply({"channel": "futures.pong", "event": ""}, now_s, None, result=None)
        if event not in ("subscribe", "unsubscribe") or channel not in (
            LIQUIDATES,
            TRADES,
            TICKERS,
        ):
            return _reply(head, now_s, f"unknown channel {channel} or event {event}")
        payload = req.get("payload")
        head["payload"] = payload
        known = {c for c, _, _ in CONTRACTS.values()} | ({ALL} if channel == LIQUIDATES else set())
        if not isinstance(payload, list) or not payload:
            return _reply(head, now_s, "payload must be a list of contracts")
        bad = [c for c in payload if c not in known]
        if bad:
            return _reply(head, now_s, f"unknown contract {bad[0]}")
        keys = [stream(channel, c) for c in payload]
        if event == "subscribe":
            self._streams.update(dict.fromkeys(keys))
        else:
            for k in keys:
                self._streams.pop(k, None)
        return _reply(head, now_s, None, changed=True)


def _reply(
    head: dict[str, Any],
    now_s: float,
    error: str | None,
    *,
    result: object = "status",
    changed: bool = False,
) -> Reply:
    body: dict[str, Any] = {"time": int(now_s), "time_ms": int(now_s * 1000), **head}
    body["error"] = None if error is None else {"code": 2, "message": error}
    if result == "status":
        result = {"status": "fail" if error else "success"}
    body["result"] = result
    return Reply(frames=(orjson.dumps(body),), subscriptions_changed=changed)


class _Ticker:
    """A contract's running ticker state: last trade price, 24 h volumes, low/high of ``last``."""

    __slots__ = ("high", "last", "low", "pushed_ms", "vol_base", "vol_contracts", "vol_quote")

    def __init__(self) -> None:
        self.last: float | None = None
        self.low = self.high = 0.0
        self.vol_contracts = 0
        self.vol_base = self.vol_quote = 0.0
        self.pushed_ms: int | None = None


class GateFeed:
    """Scenario events -> trades at once, liquidations aggregated per contract per second, and
    throttled ``futures.tickers`` pushes. ``price_at(venue_symbol, t)`` is the scenario's price
    path (``Scenario.price_at``); without it the mark price is the event's own price."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._keys = itertools.count()
        self._trade_id: dict[str, int] = {}
        # (contract, window) -> [(key, item, ledger item)]
        self._pending: dict[tuple[str, int], list[tuple[int, dict[str, Any], SentLiquidation]]] = {}
        self._tickers: dict[str, _Ticker] = {}

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        name, mult, decimals = _contract(event.venue_symbol)
        contracts = round(event.qty / mult)
        out: list[Outgoing] = []
        if contracts <= 0:
            pass  # below one contract: no such order, but the ticker still moves
        elif isinstance(event, SimTrade):
            out.append(self._trade(event, name, mult, decimals, contracts, now_ms))
        else:
            bucket = (name, now_ms // AGGREGATION_MS)
            entries = self._pending.setdefault(bucket, [])
            liq = self._liquidation(event, name, mult, contracts, now_ms)
            entries.append((next(self._keys), *liq))
            if len(entries) >= FLUSH_AT:
                out.append(self._push(name, self._pending.pop(bucket), now_ms))
        ticker = self._ticker(event, name, mult, decimals, now_ms)
        if ticker is not None:
            out.append(ticker)
        return out

    def next_deadline_ms(self) -> int | None:
        return min(((w + 1) * AGGREGATION_MS for _, w in self._pending), default=None)

    def flush(self, now_ms: int) -> list[Outgoing]:
        due = sorted((b for b in self._pending if (b[1] + 1) * AGGREGATION_MS <= now_ms),
                     key=lambda b: b[1])  # fmt: skip
        return [self._push(b[0], self._pending.pop(b), now_ms) for b in due]

    def _push(
        self, name: str, entries: list[tuple[int, dict[str, Any], SentLiquidation]], now_ms: int
    ) -> Outgoing:
        body = {"channel": LIQUIDATES, "event": "update", "time": now_ms // 1000,
                "time_ms": now_ms, "result": [item for _, item, _ in entries]}  # fmt: skip
        return Outgoing(
            (stream(LIQUIDATES, name), stream(LIQUIDATES, ALL)),
            orjson.dumps(body),
            tuple(k for k, _, _ in entries),
            tuple(s for _, _, s in entries),
        )

    def _liquidation(
        self, liq: SimLiquidation, name: str, mult: float, contracts: int, now_ms: int
    ) -> tuple[dict[str, Any], SentLiquidation]:
        spec = instrument(liq.venue_symbol)
        long = liq.liquidated_side == "long"
        price = (
            spec.round_price(liq.price * (1 - PRICE_OFFSET), "floor")
            if long
            else spec.round_price(liq.price * (1 + PRICE_OFFSET), "ceil")
        )
        price_text = spec.price_text(price)
        size = f"-{contracts}" if long else str(contracts)  # negative: sell order, long closed
        item = {"price": price_text, "size": size, "time": now_ms, "contract": name}
        sent = SentLiquidation(VENUE, name, liq.liquidated_side, str(contracts), price_text,
                               now_ms, multiplier=mult)  # fmt: skip
        return item, sent

    def _trade(
        self, tr: SimTrade, name: str, mult: float, decimals: int, contracts: int, now_ms: int
    ) -> Outgoing:
        spec = instrument(tr.venue_symbol)
        price_text = spec.price_text(spec.round_price(tr.price))
        tid = self._trade_id.get(name, 27_000_000 + zlib.crc32(name.encode()) % 10**6)
        self._trade_id[name] = tid + 1
        size = f"-{contracts}" if tr.taker_side == "sell" else str(contracts)
        item = {"size": size, "id": tid, "create_time": now_ms // 1000, "create_time_ms": now_ms,
                "price": price_text, "contract": name}  # fmt: skip
        body = {"channel": TRADES, "event": "update", "time": now_ms // 1000, "time_ms": now_ms,
                "result": [item]}  # fmt: skip
        qty_text = fmt_decimal(contracts * mult, decimals)
        sent = SentTrade(VENUE, name, tr.taker_side, qty_text, price_text, now_ms, str(tid))
        state = self._tickers.setdefault(name, _Ticker())
        price = float(price_text)
        state.low = price if state.last is None else min(state.low, price)
        state.high = price if state.last is None else max(state.high, price)
        state.last = price
        state.vol_contracts += contracts
        state.vol_base += float(qty_text)
        state.vol_quote += float(qty_text) * price
        return Outgoing((stream(TRADES, name),), orjson.dumps(body), (next(self._keys),), (sent,))

    def _ticker(
        self, event: SimEvent, name: str, mult: float, decimals: int, now_ms: int
    ) -> Outgoing | None:
        state = self._tickers.setdefault(name, _Ticker())
        if state.pushed_ms is not None and now_ms - state.pushed_ms < TICKER_PUSH_MS:
            return None
        state.pushed_ms = now_ms
        sym = event.venue_symbol
        spec = instrument(sym)
        price = self._price_at(sym, event.t) if self._price_at is not None else event.price
        g = max(0.0, 1.0 - price / spec.start_price) / spec.drop
        mark = spec.round_price(price)
        last = state.last if state.last is not None else mark
        low = state.low if state.last is not None else mark
        high = state.high if state.last is not None else mark
        rate = round(FUNDING_CALM + FUNDING_CRASH * min(g, 1.0), 6) + 0.0
        g_next = min(g + FUNDING_INDICATIVE_STEP, 1.0)
        indicative = round(FUNDING_CALM + FUNDING_CRASH * g_next, 6) + 0.0
        oi_base = (OI_USD_START[sym] / spec.start_price * (1.0 + OI_DRIFT_PER_S * event.t)
                   * (1.0 - OI_CRASH_DROP * g))  # fmt: skip
        total_size = max(0, round(oi_base / mult))
        item = {
            "contract": name,
            "last": spec.price_text(last),
            "change_percentage": f"{(last / spec.start_price - 1.0) * 100:.2f}",
            "funding_rate": f"{rate:.6f}",
            "funding_rate_indicative": f"{indicative:.6f}",
            "mark_price": spec.price_text(mark),
            "index_price": fmt_decimal(price * (1.0 + INDEX_PREMIUM * g), spec.price_decimals + 2),
            "total_size": str(total_size),
            "volume_24h": str(state.vol_contracts),
            "quanto_base_rate": "",
            "volume_24h_quote": f"{state.vol_quote:.0f}",
            "volume_24h_settle": f"{state.vol_quote:.0f}",
            "volume_24h_base": fmt_decimal(state.vol_base, decimals),
            "low_24h": spec.price_text(low),
            "high_24h": spec.price_text(high),
        }
        body = {"time": now_ms // 1000, "time_ms": now_ms, "channel": TICKERS, "event": "update",
                "result": [item]}  # fmt: skip
        return Outgoing((stream(TICKERS, name),), orjson.dumps(body), (), ())  # not in the ledger


def _contract(venue_symbol: str) -> tuple[str, float, int]:
    try:
        return CONTRACTS[venue_symbol]
    except KeyError:
        raise ValueError(f"no simulated Gate contract for {venue_symbol!r}") from None


def route(path: str) -> tuple[int, str] | None:
    p = urlsplit(path).path
    return None if p == PATH else (404, f"Not Found: {p}")


def new_session(path: str, conn_id: str) -> GateSession:
    return GateSession(conn_id)


_CONTRACTS_BODY: Final = orjson.dumps(
    [{"name": name, "type": "direct", "quanto_multiplier": fmt_decimal(mult, decimals),
      "order_price_round": fmt_decimal(instrument(sym).tick, instrument(sym).price_decimals),
      "in_delisting": False} for sym, (name, mult, decimals) in CONTRACTS.items()]
)  # fmt: skip


def rest(path: str) -> tuple[int, bytes] | None:
    return (200, _CONTRACTS_BODY) if urlsplit(path).path == CONTRACTS_PATH else None


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: ``!all`` liquidations, then trades and tickers, 100 contracts a request, each
    request stamped with ``now_s``."""

    def request(channel: str, payload: list[str]) -> str:
        return compact_json({"time": int(now_s), "channel": channel, "event": "subscribe",
                             "payload": payload})  # fmt: skip

    frames = [request(LIQUIDATES, [ALL])]
    for channel in (TRADES, TICKERS):
        frames += [request(channel, c) for c in chunks(list(syms), 100)]
    return [Connection("public", base, tuple(frames))]


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=route,
    new_session=new_session,
    new_feed=GateFeed,
    new_feed_for=lambda scenario: GateFeed(scenario.price_at),
    rest=rest,
    activity=0.4,
    scenario_order=4,
    in_default_scenario=False,
    venue_symbol=lambda symbol: CONTRACTS[symbol][0] if symbol in CONTRACTS else None,
    liquidations_as_trades=False,
    client_plan=client_plan,
    rest_paths=(CONTRACTS_PATH,),
)
