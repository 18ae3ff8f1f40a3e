"""Per-pair risk snapshots on the risk topic, and the asset-level view built from them. Pure module.

Each consumer publishes, every ``consumer.risk_publish_s``, one record per exported pair to
``<prefix>.risk``, keyed by the pair's asset (``BTC`` for ``BTC-USDT-PERP``), so one asset's pairs
from every venue meet on one partition. A record value is an orjson object::

    {"v": 1, "exchange": "okx", "symbol": "BTC-USDT-PERP", "asset": "BTC",
     "t": <event-clock seconds>, "published_ms": <wall ms>, "values": {"score": 0.42, ...}}

``values`` holds numbers or null (not defined yet). The asset view combines the latest record of
every (exchange, symbol) of an asset: flows and notionals add up across venues (``SUM_FIELDS``:
liquidation rates, notional at risk on the map, open interest), risk levels take the worst venue
(``MAX_FIELDS``: the score and its inputs), ``venues`` counts the pairs combined. A record older
than the staleness limit (a stopped consumer) drops out of the view.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from monitor.core.errors import CodecError

RISK_VERSION: Final = 1

SUM_FIELDS: Final = (
    "liq_rate_long_60s", "liq_rate_short_60s", "liq_rate_unknown_60s", "trade_rate_60s",
    "at_risk_long_1pct", "at_risk_long_2pct", "at_risk_long_5pct",
    "at_risk_short_1pct", "at_risk_short_2pct", "at_risk_short_5pct",
    "expected_liquidations_usd", "open_interest_usd", "liq_rate_60s",
)  # fmt: skip
MAX_FIELDS: Final = (
    "score", "branching_ratio", "branching_ratio_lower", "branching_ratio_upper",
    "branching_ratio_exact", "n_struct", "liq_zscore", "liq_share", "vpin", "volatility",
    "margin_stress_index", "drawdown", "score_coverage", "liq_surge",
)  # fmt: skip
FIELDS: Final = SUM_FIELDS + MAX_FIELDS


def asset_of(symbol: str) -> str:
    """The base asset of a canonical symbol (``BTC-USDT-PERP`` -> ``BTC``)."""
    return symbol.split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class RiskRecord:
    exchange: str
    symbol: str
    t: float  # the publishing consumer's event clock, seconds
    published_ms: int  # wall clock at publishing
    values: Mapping[str, float]  # FIELDS present; NaN where not defined

    @property
    def asset(self) -> str:
        return asset_of(self.symbol)


def encode_risk(exchange: str, symbol: str, t: float, published_ms: int,
                values: Mapping[str, float]) -> bytes:  # fmt: skip
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise CodecError(f"unknown risk field(s) {sorted(unknown)}")
    doc = {
        "v": RISK_VERSION, "exchange": exchange, "symbol": symbol, "asset": asset_of(symbol),
        "t": t, "published_ms": published_ms,
        "values": {k: (float(v) if math.isfinite(v) else None) for k, v in values.items()},
    }  # fmt: skip
    return orjson.dumps(doc)


def decode_risk(value: bytes) -> RiskRecord:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != RISK_VERSION:
        raise CodecError("not a v1 risk record")
    exchange, symbol, t, pub = (
        doc.get("exchange"),
        doc.get("symbol"),
        doc.get("t"),
        doc.get("published_ms"),
    )
    vals = doc.get("values")
    if not (isinstance(exchange, str) and isinstance(symbol, str) and isinstance(vals, dict)):
        raise CodecError("risk record header or values missing")
    if not (isinstance(t, int | float) and isinstance(pub, int)) or isinstance(pub, bool):
        raise CodecError("risk record times missing")
    out: dict[str, float] = {}
    for k, v in vals.items():
        if k not in FIELDS:
            continue  # a newer producer's field: ignored, not fatal
        if v is None:
            out[k] = math.nan
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out[k] = float(v)
        else:
            raise CodecError(f"risk value {k}={v!r} is not a number or null")
    return RiskRecord(exchange, symbol, float(t), pub, out)


@dataclass(frozen=True, slots=True)
class AssetView:
    asset: str
    venues: int  # pairs combined
    values: dict[str, float]  # SUM_FIELDS summed (NaN-skipping), MAX_FIELDS worst; NaN if none
    worst: tuple[str, str]  # (exchange, symbol) of the highest score


def asset_views(records: Iterable[RiskRecord], now_ms: int, stale_ms: int) -> list[AssetView]:
    """The asset-level view of the latest records younger than ``stale_ms``."""
    by_asset: dict[str, list[RiskRecord]] = {}
    for r in records:
        if now_ms - r.published_ms <= stale_ms:
            by_asset.setdefault(r.asset, []).append(r)
    out = []
    for asset, recs in sorted(by_asset.items()):
        values: dict[str, float] = {}
        for f in SUM_FIELDS:
            xs = [r.values.get(f, math.nan) for r in recs]
            xs = [x for x in xs if not math.isnan(x)]
            values[f] = math.fsum(xs) if xs else math.nan
        for f in MAX_FIELDS:
            xs = [r.values.get(f, math.nan) for r in recs]
            xs = [x for x in xs if not math.isnan(x)]
            values[f] = max(xs) if xs else math.nan
        worst = max(recs, key=lambda r: _score_key(r.values.get("score", math.nan)))
        out.append(AssetView(asset, len(recs), values, (worst.exchange, worst.symbol)))
    return out


def _score_key(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def fields_dict(values: Mapping[str, Any]) -> dict[str, float]:
    """Every field, NaN where ``values`` lacks it (what a consumer publishes)."""
    return {f: float(values.get(f, math.nan)) for f in FIELDS}
