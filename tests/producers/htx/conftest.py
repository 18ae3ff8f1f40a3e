"""Shared helpers for the HTX tests: frames are stored as plain JSON and gzip-compressed here,
as the venue sends them."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from producers.htx import HtxAdapter

DATA = Path(__file__).resolve().parent / "data"
CONTRACT_INFO_URL = "https://api.hbdm.com/linear-swap-api/v1/swap_contract_info"


def gz(raw: bytes | object) -> bytes:
    body = raw if isinstance(raw, bytes) else orjson.dumps(raw)
    return gzip.compress(body, mtime=0)


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def loaded_adapter(symbols: tuple[str, ...] = ("BTC-USDT",)) -> HtxAdapter:
    adapter = HtxAdapter(ExchangeConfig(symbols=symbols))
    assert adapter.load_instruments(CONTRACT_INFO_URL, data("swap_contract_info.json")) == 3
    return adapter


@pytest.fixture
def adapter() -> HtxAdapter:
    return loaded_adapter()
