"""The starting book: the density parameter is what it says, the cleared band is empty, and the
heaps hand out levels in the order a moving price meets them."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from monitor.simulator.reflexive.book import NEAR_BAND, SIZE_CAP, BookShape, PositionBook, seed_book
from monitor.simulator.reflexive.margin import BINANCE_BTC_2021, DEFAULT_LEVERAGE, LeverageMix

PRICE = 50_000.0


def _seeded(
    long: bool, shape: BookShape, leverage: LeverageMix = DEFAULT_LEVERAGE
) -> tuple[PositionBook, float]:
    book = PositionBook()
    near = seed_book(book, np.random.default_rng(8), price=PRICE, long=long, shape=shape,
                     leverage=leverage, tiers=BINANCE_BTC_2021,
                     venue_probs=np.array([0.5, 0.3, 0.2]))  # fmt: skip
    return book, near


@pytest.mark.parametrize("long", [True, False])
def test_density_counts_the_levels_near_the_price(long: bool) -> None:
    shape = BookShape(2e6, 10_000.0, cleared=0.01)
    book, near = _seeded(long, shape)
    target = 2e6 * NEAR_BAND * 100
    assert target <= near < target + SIZE_CAP * 10_000.0  # the draw that reached it is the last
    assert book.notional_within(PRICE, NEAR_BAND, long, t=-1.0) == pytest.approx(near)
    gaps = [(PRICE - lp) / PRICE if long else (lp - PRICE) / PRICE for lp in book.liq]
    assert min(gaps) > 0.01 and max(gaps) <= 0.35
    assert set(book.long) == {long} and set(book.venue) <= {0, 1, 2}


def test_levels_come_out_in_the_order_a_moving_price_meets_them() -> None:
    book, _ = _seeded(True, BookShape(1e6, 10_000.0))
    first = [-heapq.heappop(book.levels_long)[0] for _ in range(50)]
    assert first == sorted(first, reverse=True) and first[0] == max(book.liq)


def test_a_mix_that_puts_nothing_near_the_price_is_refused() -> None:
    with pytest.raises(ValueError, match="too few levels"):
        _seeded(True, BookShape(1e6, 10_000.0), LeverageMix((1.0,), (1.0,)))  # 1x: never
