"""Each venue's connections, subscribe requests and instrument REST paths, as a client sends them.

Pure module. What a recording of a venue starts with: the sockets a client opens (path, query) and
the requests it sends on each, in the venue's documented forms (exchange-feeds.md), for the
venue's spelling of the scenario's symbols. They are the requests the project's producers send
(a test checks the two agree), built here because the simulator never imports ``producers``:

* Binance: ``liquidations`` on ``/ws/!forceOrder@arr``, ``trades`` on a combined stream of each
  symbol's ``@aggTrade`` and ``@markPrice@1s`` (subscribed by URL: no requests);
* Bybit: ``public``, every symbol's ``allLiquidation``, ``publicTrade``, ``tickers`` topics, 10 a
  request (``req_id`` ``sub-N``), and ``inverse`` on ``/v5/public/inverse``: ``allLiquidation`` of
  the inverse perpetuals the venue lists (``bybit.INVERSE_TWINS``);
* OKX: ``public``, ``liquidation-orders`` SWAP then per instrument ``trades``, ``mark-price``,
  ``funding-rate``, ``open-interest``, args packed into requests of at most 64 KB (``id`` subN);
* HTX: ``liquidations`` (notification endpoint: the wildcard, ``business_type`` swap, then each
  contract's funding rate), ``trades`` (market endpoint), ``context`` (index endpoint: mark and
  index 1-minute klines), one topic a request;
* Gate: ``public``: ``!all`` liquidations, then trades and tickers, 100 contracts a request;
* Bitget: ``public``: ``liquidation`` for usdt-futures, then per symbol ``publicTrade``, ``ticker``
  (args of at most 4096 bytes, 50 channels a socket);
* BitMEX: ``public``: ``liquidation``, then ``trade:`` and ``instrument:`` per symbol, 50 a request;
* Deribit: ``public``: ``public/set_heartbeat`` (30 s), then ``trades`` and ``ticker`` (100ms)
  channels, 64 a request, ids from 2;
* Kraken: ``public``: ``trade``, ``ticker``, ``heartbeat``;
* Hyperliquid: ``public``: per coin ``trades`` then ``activeAssetCtx``, one request each.

Bybit's ``allLiquidation`` of listed symbols that are not in the scenario (the producer's second
socket) is left out: the scenario has no liquidation there to show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from monitor.simulator.venues import bybit

HOST: Final = "ws://127.0.0.1"
REST_HOST: Final = "http://127.0.0.1"
BASE_PATHS: Final = {
    "binance": "/market", "bybit": "/v5/public/linear", "okx": "/ws/v5/public", "htx": "",
    "gate": "/v4/ws/usdt", "bitget": "/v3/ws/public", "bitmex": "/realtime",
    "deribit": "/ws/api/v2", "kraken": "/ws/v1", "hyperliquid": "/ws",
}  # fmt: skip
REST_PATHS: Final = {
    "bybit": (
        "/v5/market/instruments-info?category=linear&limit=1000",
        "/v5/market/instruments-info?category=inverse&limit=1000",
    ),
    "okx": ("/api/v5/public/instruments?instType=SWAP",),
    "htx": ("/linear-swap-api/v1/swap_contract_info",),
    "gate": ("/api/v4/futures/usdt/contracts",),
    "bitmex": ("/api/v1/instrument/active",),
}


@dataclass(frozen=True)
class Connection:
    name: str
    url: str
    subscribe: tuple[str, ...] = ()


def base_url(venue: str) -> str:
    return HOST + BASE_PATHS[venue]


def _json(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def _packed(args: list[dict[str, str]], max_bytes: int) -> list[list[dict[str, str]]]:
    """Args packed greedily into lists whose JSON stays within ``max_bytes`` (one alone if
    longer)."""
    batches: list[list[dict[str, str]]] = []
    size = 0
    for arg in args:
        n = len(orjson.dumps(arg))
        if batches and size + 1 + n <= max_bytes:
            batches[-1].append(arg)
            size += 1 + n
        else:
            batches.append([arg])
            size = 2 + n
    return batches


def _chunks(items: list[Any], n: int) -> list[list[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def _binance(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    streams = [f"{s.lower()}{x}" for s in syms for x in ("@aggTrade", "@markPrice@1s")]
    out = [Connection("liquidations", f"{base}/ws/!forceOrder@arr")]
    for i, shard in enumerate(_chunks(streams, 1024)):
        name = "trades" if i == 0 else f"trades-{i + 1}"
        out.append(Connection(name, f"{base}/stream?streams={'/'.join(shard)}"))
    return out


def _bybit(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    def frames(topics: list[str]) -> tuple[str, ...]:
        return tuple(_json({"op": "subscribe", "args": a, "req_id": f"sub-{i + 1}"})
                     for i, a in enumerate(_chunks(topics, 10)))  # fmt: skip

    topics = [f"{c}.{s}" for c in ("allLiquidation", "publicTrade", "tickers") for s in syms]
    inverse = [f"allLiquidation.{s}" for s in dict.fromkeys(bybit.INVERSE_TWINS.values())]
    out = [Connection("public", base, frames(topics))] if topics else []
    inverse_url = base.removesuffix("/linear") + "/inverse"
    return out + ([Connection("inverse", inverse_url, frames(inverse))] if inverse else [])


def _okx(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    args = [{"channel": "liquidation-orders", "instType": "SWAP"}] + [
        {"channel": c, "instId": s}
        for s in syms
        for c in ("trades", "mark-price", "funding-rate", "open-interest")
    ]
    frames = tuple(_json({"id": f"sub{i}", "op": "subscribe", "args": b})
                   for i, b in enumerate(_packed(args, 64 * 1024), start=1))  # fmt: skip
    return [Connection("public", base, frames)]


def _htx(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    liq = {"op": "sub", "cid": "liq-1", "topic": "public.*.liquidation_orders",
           "business_type": "swap"}  # fmt: skip
    funding = [{"op": "sub", "cid": f"funding-{i}", "topic": f"public.{c}.funding_rate"}
               for i, c in enumerate(syms, start=1)]  # fmt: skip
    out = [Connection("liquidations", f"{base}/linear-swap-notification",
                      tuple(_json(d) for d in (liq, *funding)))]  # fmt: skip
    if syms:
        trades = tuple(_json({"sub": f"market.{c}.trade.detail", "id": f"trades-{i}"})
                       for i, c in enumerate(syms, start=1))  # fmt: skip
        context: list[str] = []
        for i, c in enumerate(syms, start=1):
            context.append(_json({"sub": f"market.{c}.mark_price.1min", "id": f"mark-{i}"}))
            context.append(_json({"sub": f"market.{c}.index.1min", "id": f"index-{i}"}))
        out.append(Connection("trades", f"{base}/linear-swap-ws", trades))
        out.append(Connection("context", f"{base}/ws_index", tuple(context)))
    return out


def _gate(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    def request(channel: str, payload: list[str]) -> str:
        return _json({"time": int(now_s), "channel": channel, "event": "subscribe",
                      "payload": payload})  # fmt: skip

    frames = [request("futures.public_liquidates", ["!all"])]
    for channel in ("futures.trades", "futures.tickers"):
        frames += [request(channel, c) for c in _chunks(list(syms), 100)]
    return [Connection("public", base, tuple(frames))]


def _bitget(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    args = [{"instType": "usdt-futures", "topic": "liquidation"}] + [
        {"instType": "usdt-futures", "topic": t, "symbol": s}
        for s in syms
        for t in ("publicTrade", "ticker")
    ]
    out = []
    for i, shard in enumerate(_chunks(args, 50)):
        frames = tuple(_json({"op": "subscribe", "args": b}) for b in _packed(shard, 4096))
        out.append(Connection("public" if i == 0 else f"public-{i + 1}", base, frames))
    return out


def _bitmex(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    topics = ["liquidation"] + [f"{t}:{s}" for s in syms for t in ("trade", "instrument")]
    frames = tuple(_json({"op": "subscribe", "args": a}) for a in _chunks(topics, 50))
    return [Connection("public", base, frames)]


def _deribit(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    if not syms:
        return []
    chans = [f"trades.{s}.100ms" for s in syms] + [f"ticker.{s}.100ms" for s in syms]

    def request(rid: int, method: str, params: dict[str, Any]) -> str:
        return _json({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})

    frames = [request(1, "public/set_heartbeat", {"interval": 30})]
    frames += [request(2 + i, "public/subscribe", {"channels": c})
               for i, c in enumerate(_chunks(chans, 64))]  # fmt: skip
    return [Connection("public", base, tuple(frames))]


def _kraken(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    if not syms:
        return []
    frames = (
        _json({"event": "subscribe", "feed": "trade", "product_ids": list(syms)}),
        _json({"event": "subscribe", "feed": "ticker", "product_ids": list(syms)}),
        _json({"event": "subscribe", "feed": "heartbeat"}),
    )
    return [Connection("public", base, frames)]


def _hyperliquid(base: str, syms: Sequence[str], now_s: float) -> list[Connection]:
    frames = tuple(_json({"method": "subscribe", "subscription": {"type": t, "coin": c}})
                   for c in syms for t in ("trades", "activeAssetCtx"))  # fmt: skip
    return [Connection("public", base, frames)] if frames else []


_PLANS: Final[dict[str, Callable[[str, Sequence[str], float], list[Connection]]]] = {
    "binance": _binance, "bybit": _bybit, "okx": _okx, "htx": _htx, "gate": _gate,
    "bitget": _bitget, "bitmex": _bitmex, "deribit": _deribit, "kraken": _kraken,
    "hyperliquid": _hyperliquid,
}  # fmt: skip


def connections(venue: str, venue_symbols: Sequence[str], now_s: float) -> list[Connection]:
    """The sockets to open on ``venue`` for its symbols (venue spelling, in order) and the
    requests to send on each; ``now_s`` is the epoch second a request that carries one (Gate)."""
    syms = list(dict.fromkeys(venue_symbols))
    return _PLANS[venue](base_url(venue), syms, now_s)
