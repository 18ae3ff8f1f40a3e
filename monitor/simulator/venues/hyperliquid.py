"""Hyperliquid websocket (``/ws``), as the simulator speaks it. Pure module (sans-I/O).

Path ``/ws`` (anything else: HTTP 404). Client messages (docs/venues.md §9):

* ``{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}`` and
  ``{"type":"activeAssetCtx","coin":"BTC"}`` -> ``{"channel":"subscriptionResponse","data":<the
  request>}``; ``unsubscribe`` likewise. Another subscription type or an unknown coin:
  ``{"channel":"error","data":"Invalid subscription: ..."}`` (simulator wording); a repeated
  subscription: ``"Already subscribed: ..."``.
* ``{"method":"ping"}`` -> ``{"channel":"pong"}``.

Coins: BTCUSDT -> ``BTC`` (price tick 1, size 0.00001), ETHUSDT -> ``ETH`` (0.1, 0.0001),
SOLUSDT -> ``SOL`` (0.001, 0.01), DOGEUSDT -> ``DOGE`` (0.00001, 1); prices and sizes are decimal strings.

Trades: one ``trades`` message per scenario event; ``side`` is the aggressor (``B``/``A``).
Hyperliquid has no public liquidation feed, so a scenario liquidation is sent as a plain trade
(the aggressor is the liquidated position's closing order) and recorded as a SentTrade only.

Market context (``activeAssetCtx``): ``{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":
{...}}}``, pushed on a coin's scenario events at most once every ``CTX_PUSH_MS`` (1 s; the real
venue pushes on change, about every second: **UNVERIFIED** cadence) and carrying the whole context
at the scenario time of the event that triggered it (the real venue also sends the current context
right after subscribing: not modelled). Every value is a decimal string, in the venue's field
order; the message has no timestamp. Contexts are not market items: not in the ledger.

* ``markPx``: the scenario price path (``price_at``, when the feed is given one) rounded to the
  tick; without it, the event's own price; ``midPx`` the same, ``impactPxs`` one tick either side;
* ``oraclePx``: the path plus a spot premium growing to ``ORACLE_PREMIUM`` with the drawdown ``g``
  (0 calm, 1 at the scenario's full drop): the perp trades at a discount in the crash;
  ``premium`` = markPx / oraclePx - 1 (8 decimals);
* ``funding`` (per hour: Hyperliquid settles hourly): ``FUNDING_CALM`` (0.00125 %/h, the 0.01 %
  per 8 h interest rate) falling linearly with ``g`` by ``FUNDING_CRASH``, within the 4 %/h cap;
* ``openInterest`` (coin): ``OI_USD_START`` at the start price, growing ``OI_DRIFT_PER_S`` per
  scenario second and shrinking by ``OI_CRASH_DROP`` x ``g``, on the size grid;
* ``prevDayPx`` the start price; ``dayNtlVlm``/``dayBaseVlm`` the exact sums of the trades sent so
  far (px x sz, sz).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from monitor.simulator.clientplan import Connection, compact_json
from monitor.simulator.events import Scenario, SimEvent, SimTrade
from monitor.simulator.instruments import InstrumentSpec, fmt_decimal
from monitor.simulator.ledger import SentTrade
from monitor.simulator.wire import Outgoing, Reply, VenueSpec

VENUE: Final = "hyperliquid"
PATH: Final = "/ws"
COINS: Final = {
    "BTCUSDT": InstrumentSpec("BTC", 95000.0, 0.06, 0, 1, 5, 1, 0.0, 0.0),
    "ETHUSDT": InstrumentSpec("ETH", 3300.0, 0.08, 1, 1, 4, 1, 0.0, 0.0),
    "SOLUSDT": InstrumentSpec("SOL", 190.0, 0.11, 3, 1, 2, 1, 0.0, 0.0),
    "DOGEUSDT": InstrumentSpec("DOGE", 0.34, 0.11, 5, 1, 0, 1, 0.0, 0.0),
}
TRADES: Final = "trades"
ACTIVE_ASSET_CTX: Final = "activeAssetCtx"
SUBSCRIPTION_TYPES: Final = frozenset({TRADES, ACTIVE_ASSET_CTX})
CTX_PUSH_MS: Final = 1000
ORACLE_PREMIUM: Final = 0.002  # oracle above the mark by this fraction at full drawdown
FUNDING_CALM: Final = 0.0000125  # per hour
FUNDING_CRASH: Final = -0.0000625  # added at full drawdown (g = 1)
FUNDING_CAP: Final = 0.04  # Hyperliquid's funding cap: 4 % per hour
OI_USD_START: Final = {"BTCUSDT": 3.0e9, "ETHUSDT": 1.2e9, "SOLUSDT": 4.0e8, "DOGEUSDT": 2.0e8}
OI_DRIFT_PER_S: Final = 2e-5
OI_CRASH_DROP: Final = 0.2
_NAMES: Final = frozenset(c.venue_symbol for c in COINS.values())
_PONG: Final = b'{"channel":"pong"}'


def coin(venue_symbol: str) -> InstrumentSpec:
    try:
        return COINS[venue_symbol]
    except KeyError:
        raise ValueError(f"no Hyperliquid coin for {venue_symbol!r}") from None


def stream(kind: str, name: str) -> str:
    """The stream of a subscription: ``trades:BTC``, ``activeAssetCtx:BTC``."""
    return f"{kind}:{name}"


def route(path: str) -> tuple[int, str] | None:
    return None if urlsplit(path).path == PATH else (404, "Not Found")


class HyperliquidSession:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._streams: dict[str, None] = {}  # ordered set of "<type>:<coin>"

    @property
    def subscriptions(self) -> Collection[str]:
        return self._streams.keys()

    def frames_for(self, out: Outgoing) -> list[bytes]:
        return [out.payload] if any(s in self._streams for s in out.streams) else []

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
            or sub.get("type") not in SUBSCRIPTION_TYPES
            or sub.get("coin") not in _NAMES
        ):
            return _error(f"Invalid subscription: {text}")
        key = stream(sub["type"], sub["coin"])
        if method == "subscribe":
            if key in self._streams:
                return _error(f"Already subscribed: {text}")
            self._streams[key] = None
        else:
            self._streams.pop(key, None)
        body = {"channel": "subscriptionResponse", "data": {"method": method, "subscription": sub}}
        return Reply((orjson.dumps(body),), None, True)


def _error(msg: str) -> Reply:
    return Reply((orjson.dumps({"channel": "error", "data": msg}),))


class _CoinState:
    __slots__ = ("base_volume", "notional_volume", "pushed_ms")

    def __init__(self) -> None:
        self.pushed_ms: int | None = None
        self.notional_volume = Decimal(0)  # exact sums of the trades sent
        self.base_volume = Decimal(0)


class HyperliquidFeed:
    """Scenario events -> one ``trades`` message each (liquidations too, as plain trades), and
    throttled ``activeAssetCtx`` pushes. ``price_at(venue_symbol, t)`` is the scenario's price
    path (``Scenario.price_at``); without it the mark price is the event's own price."""

    def __init__(self, price_at: Callable[[str, float], float] | None = None) -> None:
        self._price_at = price_at
        self._keys = itertools.count()
        self._tids = itertools.count(1)
        self._coins: dict[str, _CoinState] = {}  # scenario symbol -> state

    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        spec = coin(event.venue_symbol)
        name = spec.venue_symbol
        state = self._coins.get(event.venue_symbol)
        if state is None:
            state = self._coins[event.venue_symbol] = _CoinState()
        if isinstance(event, SimTrade):
            taker = event.taker_side
        else:
            taker = "sell" if event.liquidated_side == "long" else "buy"
        px = spec.price_text(spec.round_price(event.price), strip=True)
        sz = spec.qty_text(spec.round_qty(event.qty), strip=True)
        state.notional_volume += Decimal(px) * Decimal(sz)
        state.base_volume += Decimal(sz)
        tid = next(self._tids) * 7_919  # any 50-bit id
        item: dict[str, Any] = {"coin": name, "side": "A" if taker == "sell" else "B", "px": px,
                                "sz": sz, "hash": f"0x{tid:064x}", "time": now_ms, "tid": tid,
                                "users": ["0x" + "1" * 40, "0x" + "2" * 40]}  # fmt: skip
        payload = orjson.dumps({"channel": TRADES, "data": [item]})
        sent = SentTrade(VENUE, name, taker, sz, px, now_ms, str(tid))
        out = [Outgoing((stream(TRADES, name),), payload, (next(self._keys),), (sent,))]
        if state.pushed_ms is None or now_ms - state.pushed_ms >= CTX_PUSH_MS:
            state.pushed_ms = now_ms
            out.append(self._context(event, spec, state))
        return out

    def next_deadline_ms(self) -> int | None:
        return None

    def flush(self, now_ms: int) -> list[Outgoing]:
        return []

    def _context(self, event: SimEvent, spec: InstrumentSpec, state: _CoinState) -> Outgoing:
        """The whole perps context of the event's coin at the event's scenario time."""
        sym, name = event.venue_symbol, spec.venue_symbol
        path = self._price_at(sym, event.t) if self._price_at is not None else event.price
        mark = spec.round_price(path)
        g = max(0.0, 1.0 - path / spec.start_price) / spec.drop
        oracle = spec.round_price(path * (1.0 + ORACLE_PREMIUM * g))
        rate = min(max(FUNDING_CALM + FUNDING_CRASH * g, -FUNDING_CAP), FUNDING_CAP)
        oi = spec.round_qty(
            OI_USD_START[sym] / spec.start_price * (1.0 + OI_DRIFT_PER_S * event.t)
            * (1.0 - OI_CRASH_DROP * g)
        )  # fmt: skip
        mark_text = spec.price_text(mark, strip=True)
        ctx = {
            "funding": fmt_decimal(round(rate, 10) + 0.0, 10, strip=True),
            "openInterest": spec.qty_text(oi, strip=True),
            "prevDayPx": spec.price_text(spec.start_price, strip=True),
            "dayNtlVlm": f"{state.notional_volume:f}",
            "premium": fmt_decimal(round(mark / oracle - 1.0, 8) + 0.0, 8, strip=True),
            "oraclePx": spec.price_text(oracle, strip=True),
            "markPx": mark_text,
            "midPx": mark_text,
            "impactPxs": [spec.price_text(mark - spec.tick, strip=True),
                          spec.price_text(mark + spec.tick, strip=True)],
            "dayBaseVlm": f"{state.base_volume:f}",
        }  # fmt: skip
        payload = orjson.dumps({"channel": ACTIVE_ASSET_CTX, "data": {"coin": name, "ctx": ctx}})
        return Outgoing((stream(ACTIVE_ASSET_CTX, name),), payload, (), ())


def _new_session(path: str, conn_id: str) -> HyperliquidSession:
    return HyperliquidSession(conn_id)


def _new_feed_for(scenario: Scenario) -> HyperliquidFeed:
    return HyperliquidFeed(scenario.price_at)


def client_plan(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    """``public``: each coin's ``trades``, then its ``activeAssetCtx``, one request each; no
    socket without coins."""
    frames = tuple(compact_json({"method": "subscribe", "subscription": {"type": t, "coin": c}})
                   for c in syms for t in ("trades", "activeAssetCtx"))  # fmt: skip
    return [Connection("public", base, frames)] if frames else []


SPEC: Final = VenueSpec(
    name=VENUE,
    base_path=PATH,
    route=route,
    new_session=_new_session,
    new_feed=HyperliquidFeed,
    new_feed_for=_new_feed_for,
    activity=0.6,
    scenario_order=9,
    in_default_scenario=False,
    venue_symbol=lambda symbol: COINS[symbol].venue_symbol if symbol in COINS else None,
    liquidations_as_trades=True,  # no liquidation feed: a liquidation is a plain trade
    client_plan=client_plan,
    rest_paths=(),
)
