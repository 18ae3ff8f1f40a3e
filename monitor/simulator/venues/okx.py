"""OKX v5 public stream and instrument REST endpoint, as the simulator speaks them. Pure module.

Path ``/ws/v5/public`` (anything else: HTTP 404). Client messages (docs/venues.md §3):

* the text ``ping`` -> the text ``pong``;
* ``{"id":"1","op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"},
  {"channel":"trades","instId":"BTC-USDT-SWAP"}]}`` -> one ack per arg,
  ``{"id":"1","event":"subscribe","arg":{...},"connId":"<id>"}`` (``id`` echoed only when sent).
  A request is all-or-nothing; failures are ``{"id":..,"event":"error","code":..,"msg":..,
  "connId":..}``: not JSON 60012, unknown op 60019, bad or oversized (> 64 KB) args 60013, an
  unknown channel or instId 60018, more than 480 subscribe/unsubscribe requests in an hour 60014.
  Re-subscribing a channel is acknowledged again (idempotent). Error wording is modelled on the
  documented codes; the 64 KB code (60013) is **UNVERIFIED**.
* ``unsubscribe`` likewise. Not modelled: the server's 30 s no-subscription/no-data close.

Served instruments: ``BTC-USDT-SWAP`` (ctVal 0.01 BTC), ``ETH-USDT-SWAP`` (0.1 ETH), ``SOL-USDT-SWAP``
(1 SOL), ``DOGE-USDT-SWAP`` (1000 DOGE), scenario symbols ``BTCUSDT``/``ETHUSDT``/``SOLUSDT``/``DOGEUSDT``; ``BTC-USD-SWAP`` (inverse, 100 USD)
is listed by REST and subscribable but carries no data. Sizes are whole contracts: a scenario
quantity is rounded to the nearest contract and an item that rounds to 0 contracts is not sent.

* liquidation-orders (``instType`` SWAP): SAMPLED as documented, at most one liquidation order
  per contract per second: every 1000 ms (wall-clock windows) one push with one ``data`` item per
  instrument that had liquidations, its ``details`` holding one order, the latest of that second
  (OKX does not say which one it keeps; the latest, as Binance documents for its feed). The others
  are never sent and never enter the ledger. ``side`` is the forced order's side (sell = a long was liquidated); ``posSide`` is
  ``net`` (one-way mode) for items with an even venue key, else long/short; ``bkPx`` the bankruptcy
  price 0.5 % beyond the scenario price; ``sz`` contracts; ``ts`` a string.
* trades: the trades of one instrument in the same 100 ms tick, in one push at the end of the tick;
  ``side`` the taker side, ``tradeId`` a per-instrument counter, ``sz`` contracts.

Market context (``mark-price``, ``funding-rate``, ``open-interest``, per instId), pushed on an
instrument's scenario events, at most one push per channel and instrument every ``MARK_PUSH_MS``
(200 ms: OKX pushes the mark every 200 ms while it changes), ``OI_PUSH_MS`` (3 s, as OKX) and
``FUNDING_PUSH_MS`` (5 s; OKX: every 30-90 s, faster here so short scenarios show it). A push
carries the values at the scenario time of the event that triggered it and ``ts`` its wall time;
contexts are not market items, so they are not in the ledger.

* ``markPx``: the scenario price path (``price_at``, when the feed is given one) rounded to the
  tick; without it, the event's own price (the path rounded down or up to a tick);
* ``fundingRate``: 0.0001 in the calm, falling linearly with the drawdown ``g`` (0 calm, 1 at the
  scenario's full drop) to -0.0004; ``fundingTime`` the next 8-hour UTC boundary,
  ``nextFundingTime`` 8 hours later;
* open interest: ``OI_USD_START`` at the start price, growing ``OI_DRIFT_PER_S`` per scenario second
  and shrinking by ``OI_CRASH_DROP`` x ``g`` (positions closed in the fall); ``oi`` whole contracts,
  ``oiCcy`` = ``oi`` x ctVal, ``oiUsd`` = ``oiCcy`` x ``markPx``, exact decimals.

``GET /api/v5/public/instruments?instType=SWAP`` serves the four instruments (``rest``).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import orjson

from monitor.simulator.clientplan import Connection, compact_json, packed
from monitor.simulator.events import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import INSTRUMENTS, instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec

VENUE: Final = "okx"
PATH: Final = "/ws/v5/public"
INSTRUMENTS_PATH: Final = "/api/v5/public/instruments"
LIQUIDATION_PUSH_MS: Final = 1000
TRADE_TICK_MS: Final = 100
BANKRUPTCY_OFFSET: Final = 0.005
MAX_ARGS_BYTES: Final = 64 * 1024
MAX_REQUESTS_PER_HOUR: Final = 480
LIQUIDATION_CHANNEL: Final = "liquidation-orders"
TRADES_CHANNEL: Final = "trades"
MARK_CHANNEL: Final = "mark-price"
FUNDING_CHANNEL: Final = "funding-rate"
OI_CHANNEL: Final = "open-interest"
PER_INSTRUMENT_CHANNELS: Final = (TRADES_CHANNEL, MARK_CHANNEL, FUNDING_CHANNEL, OI_CHANNEL)
MARK_PUSH_MS: Final = 200
FUNDING_PUSH_MS: Final = 5000
OI_PUSH_MS: Final = 3000
FUNDING_INTERVAL_MS: Final = 8 * 3600 * 1000
FUNDING_CALM: Final = 0.0001
FUNDING_CRASH: Final = -0.0005  # added at full drawdown (g = 1)
FUNDING_LIMIT: Final = 0.00375  # OKX's max/min funding rate of BTC-USDT-SWAP
OI_USD_START: Final = {"BTCUSDT": 2.0e9, "ETHUSDT": 8.0e8, "SOLUSDT": 3.0e8, "DOGEUSDT": 2.0e8}
OI_DRIFT_PER_S: Final = 2e-5
OI_CRASH_DROP: Final = 0.2
LIQUIDATION_INST_TYPES: Final = ("SWAP", "FUTURES", "MARGIN", "OPTION")
LIQUIDATION_STREAM: Final = "liquidation-orders:SWAP"

# Scenario symbol -> (instId, ctVal text): contracts as OKX specifies them.
CONTRACTS: Final = {
    "BTCUSDT": ("BTC-USDT-SWAP", "0.01"),
    "ETHUSDT": ("ETH-USDT-SWAP", "0.1"),
    "SOLUSDT": ("SOL-USDT-SWAP", "1"),
    "DOGEUSDT": ("DOGE-USDT-SWAP", "1000"),
}
INVERSE_INST: Final = ("BTC-USD-SWAP", "100")
INST_IDS: Final = frozenset([i for i, _ in CONTRACTS.values()] + [INVERSE_INST[0]])


def trade_stream(inst_id: str) -> str:
    return f"{TRADES_CHANNEL}:{inst_id}"


def channel_stream(channel: str, inst_id: str) -> str:
    return f"{channel}:{inst_id}"


def contracts(qty: float, ct_val: float) -> int:
    """The scenario quantity in whole contracts (nearest; 0 means: too small to send)."""
    return round(qty / ct_val)


class OkxSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._streams: dict[str, None] = {}  # ordered set
        self._requests: collections.deque[float] = collections.deque()  # loop times, last hour

    @property
    def subscriptions(self) -> Collection[str]:
        return self._streams.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._streams for s in out.streams) else []

    def handle(self, message: str | bytes, now_s: float) -> Reply:
        if (message == b"ping") if isinstance(message, bytes) else (message == "ping"):
            return Reply(frames=(b"pong",))
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return self._error(None, "60012", f"Invalid request: {text[:200]}")
        if not isinstance(req, dict):
            return self._error(None, "60012", f"Invalid request: {text[:200]}")
        rid = req.get("id") if isinstance(req.get("id"), str) else None
        op = req.get("op")
        if op not in ("subscribe", "unsubscribe"):
            return self._error(rid, "60019", f"Invalid op: {op}")
        while self._requests and now_s - self._requests[0] >= 3600.0:
            self._requests.popleft()
        if len(self._requests) >= MAX_REQUESTS_PER_HOUR:
            return self._error(rid, "60014", "Requests too frequent.")
        self._requests.append(now_s)
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            return self._error(rid, "60013", f"Invalid args: {text[:200]}")
        if len(orjson.dumps(args)) > MAX_ARGS_BYTES:
            return self._error(rid, "60013", "Invalid args: args exceed 64 KB")
        streams = []
        for arg in args:
            stream = _stream(arg)
            if stream is None:
                return self._error(
                    rid, "60018", f"Wrong URL or channel:{arg.get('channel')},instId:"
                    f"{arg.get('instId', arg.get('instType'))} doesn't exist. Please use the "
                    "correct URL, channel and parameters referring to API document.",
                )  # fmt: skip
            streams.append(stream)
        if op == "subscribe":
            self._streams.update(dict.fromkeys(streams))
        else:
            for s in streams:
                self._streams.pop(s, None)
        head = {"id": rid} if rid is not None else {}
        acks = tuple(
            orjson.dumps({**head, "event": op, "arg": arg, "connId": self.conn_id}) for arg in args
        )
        return Reply(frames=acks, subscriptions_changed=True)

    def _error(self, rid: str | None, code: str, msg: str) -> Reply:
        head = {"id": rid} if rid is not None else {}
        body = {**head, "event": "error", "code": code, "msg": msg, "connId": self.conn_id}
        return Reply(frames=(orjson.dumps(body),))


def _stream(arg: dict[str, Any]) -> str | None:
    channel = arg.get("channel")
    if channel == LIQUIDATION_CHANNEL and "instId" not in arg:
        inst_type = arg.get("instType")
        return f"{channel}:{inst_type}" if inst_type in LIQUIDATION_INST_TYPES else None
    if channel in PER_INSTRUMENT_CHANNELS and arg.get("instId") in INST_IDS:
        return channel_stream(channel, arg["instId"])
    return None


_Entry = tuple[int, dict[str, Any], SentTrade | SentLiquidation]


class OkxFeed:
    """Scenario events -> per-tick trade pushes, batched liquidation-orders pushes, and throttled
    market context pushes. ``price_at(venue_symbol, t)`` is the scenario's price path
    (``Scenario.price_at``); without it the mark price is the event's own price."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._keys = itertools.count()
        self._trades: dict[tuple[str, int], list[_Entry]] = {}  # (instId, tick end) -> entries
        self._liqs: dict[int, dict[str, list[_Entry]]] = {}  # window end -> instId -> entries
        self._trade_seq: dict[str, int] = {}
        self._pushed_ms: dict[str, int] = {}  # context stream -> wall ms of its last push

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        inst_id, ct_text = CONTRACTS[event.venue_symbol]
        context = self._context(event, inst_id, ct_text, now_ms)
        n = contracts(event.qty, float(ct_text))
        if n <= 0:
            return context  # below one contract: OKX has no such order
        key = next(self._keys)
        if isinstance(event, SimTrade):
            end = (now_ms // TRADE_TICK_MS + 1) * TRADE_TICK_MS
            item, sent = self._trade(event, inst_id, n, now_ms)
            self._trades.setdefault((inst_id, end), []).append((key, item, sent))
        else:
            end = (now_ms // LIQUIDATION_PUSH_MS + 1) * LIQUIDATION_PUSH_MS
            detail, liq = self._liquidation(event, key, float(ct_text), n, now_ms)
            self._liqs.setdefault(end, {})[inst_id] = [(key, detail, liq)]  # one per second
        return context

    def next_deadline_ms(self) -> int | None:
        ends = [end for _, end in self._trades] + list(self._liqs)
        return min(ends, default=None)

    def flush(self, now_ms: int) -> list[Outgoing]:
        out: list[tuple[int, Outgoing]] = []
        for bucket in [b for b in self._trades if b[1] <= now_ms]:
            inst_id, end = bucket
            entries = self._trades.pop(bucket)
            payload = {"arg": {"channel": TRADES_CHANNEL, "instId": inst_id},
                       "data": [item for _, item, _ in entries]}  # fmt: skip
            out.append((end, _outgoing(trade_stream(inst_id), payload, entries)))
        for end in [e for e in self._liqs if e <= now_ms]:
            per_inst = self._liqs.pop(end)
            data = [
                {"details": [d for _, d, _ in entries], "instFamily": inst_id[:-5],
                 "instId": inst_id, "instType": "SWAP", "uly": inst_id[:-5]}
                for inst_id, entries in per_inst.items()
            ]  # fmt: skip
            payload = {"arg": {"channel": LIQUIDATION_CHANNEL, "instType": "SWAP"}, "data": data}
            entries = [e for group in per_inst.values() for e in group]
            out.append((end, _outgoing(LIQUIDATION_STREAM, payload, entries)))
        out.sort(key=lambda x: x[0])  # stable: trades before liquidations at the same end
        return [o for _, o in out]

    def _due(self, stream: str, now_ms: int, interval_ms: int) -> bool:
        last = self._pushed_ms.get(stream)
        if last is not None and now_ms - last < interval_ms:
            return False
        self._pushed_ms[stream] = now_ms
        return True

    def _context(self, event: SimEvent, inst_id: str, ct_text: str, now_ms: int) -> list[Outgoing]:
        sym = event.venue_symbol
        mark_stream = channel_stream(MARK_CHANNEL, inst_id)
        funding_stream = channel_stream(FUNDING_CHANNEL, inst_id)
        oi_stream = channel_stream(OI_CHANNEL, inst_id)
        due = [
            self._due(mark_stream, now_ms, MARK_PUSH_MS),
            self._due(funding_stream, now_ms, FUNDING_PUSH_MS),
            self._due(oi_stream, now_ms, OI_PUSH_MS),
        ]
        if not any(due):
            return []
        spec = instrument(sym)
        price = self._price_at(sym, event.t) if self._price_at is not None else event.price
        mark_text = spec.price_text(spec.round_price(price))
        g = max(0.0, 1.0 - price / spec.start_price) / spec.drop
        ts = str(now_ms)
        out = []
        if due[0]:
            item: dict[str, str] = {
                "instType": "SWAP", "instId": inst_id, "markPx": mark_text, "ts": ts
            }  # fmt: skip
            out.append(_context_out(MARK_CHANNEL, inst_id, item))
        if due[1]:
            rate = min(max(FUNDING_CALM + FUNDING_CRASH * g, -FUNDING_LIMIT), FUNDING_LIMIT)
            funding_ms = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
            item = {"formulaType": "withRate", "fundingRate": f"{round(rate, 10) + 0.0:.10f}",
                    "fundingTime": str(funding_ms), "impactValue": "", "instId": inst_id,
                    "instType": "SWAP", "interestRate": "0.0001", "maxFundingRate": "0.00375",
                    "method": "current_period", "minFundingRate": "-0.00375",
                    "nextFundingRate": "", "nextFundingTime": str(funding_ms + FUNDING_INTERVAL_MS),
                    "premium": "", "settFundingRate": "0.0001", "settState": "settled",
                    "ts": ts}  # fmt: skip
            out.append(_context_out(FUNDING_CHANNEL, inst_id, item))
        if due[2]:
            oi_base = (OI_USD_START[sym] / spec.start_price * (1.0 + OI_DRIFT_PER_S * event.t)
                       * (1.0 - OI_CRASH_DROP * g))  # fmt: skip
            oi = max(0, round(oi_base / float(ct_text)))
            oi_ccy = Decimal(oi) * Decimal(ct_text)
            item = {"instId": inst_id, "instType": "SWAP", "oi": str(oi), "oiCcy": str(oi_ccy),
                    "oiUsd": str(oi_ccy * Decimal(mark_text)), "ts": ts}  # fmt: skip
            out.append(_context_out(OI_CHANNEL, inst_id, item))
        return out

    def _trade(
        self, tr: SimTrade, inst_id: str, n: int, now_ms: int
    ) -> tuple[dict[str, Any], SentTrade]:
        seq = self._trade_seq.get(inst_id, 0) + 1
        self._trade_seq[inst_id] = seq
        price = instrument(tr.venue_symbol).price_text(tr.price)
        trade_id, side = str(seq), "sell" if tr.taker_side == "sell" else "buy"
        item = {"instId": inst_id, "tradeId": trade_id, "px": price, "sz": str(n),
                "side": side, "ts": str(now_ms), "count": "1", "source": "0"}  # fmt: skip
        return item, SentTrade(VENUE, inst_id, side, str(n), price, now_ms, trade_id)

    @staticmethod
    def _liquidation(
        liq: SimLiquidation, key: int, ct_val: float, n: int, now_ms: int
    ) -> tuple[dict[str, Any], SentLiquidation]:
        spec = instrument(liq.venue_symbol)
        long = liq.liquidated_side == "long"
        bankruptcy = (
            spec.round_price(liq.price * (1 - BANKRUPTCY_OFFSET), "floor")
            if long
            else spec.round_price(liq.price * (1 + BANKRUPTCY_OFFSET), "ceil")
        )
        price = spec.price_text(bankruptcy)
        pos = "net" if key % 2 == 0 else liq.liquidated_side
        detail = {"bkLoss": "0", "bkPx": price, "ccy": "", "posSide": pos,
                  "side": "sell" if long else "buy", "sz": str(n), "ts": str(now_ms)}  # fmt: skip
        inst_id = CONTRACTS[liq.venue_symbol][0]
        sent = SentLiquidation(
            VENUE, inst_id, liq.liquidated_side, str(n), price, now_ms, multiplier=ct_val
        )
        return detail, sent


def _outgoing(stream: str, payload: dict[str, Any], entries: list[_Entry]) -> Outgoing:
    return Outgoing(
        (stream,),
        orjson.dumps(payload),
        tuple(k for k, _, _ in entries),
        tuple(s for _, _, s in entries),
    )


def _context_out(channel: str, inst_id: str, item: dict[str, str]) -> Outgoing:
    """A context push: one item, not a market item (no keys, nothing for the ledger)."""
    payload = {"arg": {"channel": channel, "instId": inst_id}, "data": [item]}
    return Outgoing((channel_stream(channel, inst_id),), orjson.dumps(payload), (), ())


def instruments_body() -> bytes:
    """The REST ``instruments?instType=SWAP`` answer for the served instruments."""
    data = []
    for sym, (inst_id, ct_val) in CONTRACTS.items():
        base = inst_id.split("-")[0]
        data.append(_inst(inst_id, "linear", ct_val, base, "USDT", INSTRUMENTS[sym].tick))
    data.append(_inst(INVERSE_INST[0], "inverse", INVERSE_INST[1], "USD", "BTC", 0.1))
    return orjson.dumps({"code": "0", "msg": "", "data": data})


def _tick_text(tick: float) -> str:
    """A tick size as a plain decimal (``0.00001``, never ``1e-05``)."""
    return f"{tick:.12f}".rstrip("0").rstrip(".")


def _inst(inst_id: str, ct_type: str, ct_val: str, ccy: str, settle: str, tick: float) -> Any:
    family = inst_id[:-5]
    return {"instType": "SWAP", "instId": inst_id, "uly": family, "instFamily": family,
            "baseCcy": "", "quoteCcy": "", "settleCcy": settle, "ctVal": ct_val, "ctMult": "1",
            "ctValCcy": ccy, "ctType": ct_type, "lotSz": "1", "minSz": "1", "tickSz": _tick_text(tick),
            "lever": "100", "state": "live", "listTime": "1611916828000"}  # fmt: skip


def rest(path: str) -> tuple[int, bytes] | None:
    parts = urlsplit(path)
    if parts.path != INSTRUMENTS_PATH:
        return None
    if parse_qs(parts.query).get("instType") != ["SWAP"]:
        return 400, b'{"code":"51000","msg":"Parameter instType error","data":[]}'
    return 200, instruments_body()


def _route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, f"Not Found: {path}\n")


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: ``liquidation-orders`` of SWAP, then each instrument's ``trades``,
    ``mark-price``, ``funding-rate`` and ``open-interest``, args packed into requests of at most
    64 KB (``id`` ``subN``)."""
    args = [{"channel": LIQUIDATION_CHANNEL, "instType": "SWAP"}] + [
        {"channel": c, "instId": s} for s in syms for c in PER_INSTRUMENT_CHANNELS
    ]
    frames = tuple(compact_json({"id": f"sub{i}", "op": "subscribe", "args": b})
                   for i, b in enumerate(packed(args, MAX_ARGS_BYTES), start=1))  # fmt: skip
    return [Connection("public", base, frames)]


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=_route,
    new_session=lambda path, conn_id: OkxSession(conn_id),
    new_feed=OkxFeed,
    new_feed_for=lambda scenario: OkxFeed(scenario.price_at),
    rest=rest,
    activity=0.7,
    scenario_order=2,
    in_default_scenario=False,
    venue_symbol=lambda symbol: CONTRACTS[symbol][0] if symbol in CONTRACTS else None,
    liquidations_as_trades=False,
    client_plan=client_plan,
    rest_paths=(f"{INSTRUMENTS_PATH}?instType=SWAP",),
)
