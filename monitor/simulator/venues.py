"""The one explicit table of simulated venues: name -> VenueSpec (see monitor.simulator.wire)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from monitor.simulator import (
    binance,
    bitget,
    bitmex,
    bybit,
    deribit,
    gate,
    htx,
    hyperliquid,
    kraken,
    okx,
)
from monitor.simulator.wire import VenueSpec

SPECS: Final[Mapping[str, VenueSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            binance.SPEC,
            bybit.SPEC,
            okx.SPEC,
            htx.SPEC,
            gate.SPEC,
            bitget.SPEC,
            bitmex.SPEC,
            deribit.SPEC,
            kraken.SPEC,
            hyperliquid.SPEC,
        )
    }
)
