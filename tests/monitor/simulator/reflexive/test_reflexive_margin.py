"""Liquidation prices of the Binance USD-M isolated form with tiered maintenance margin, against
values worked out by hand from docs/risk-models.md §6."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.simulator.reflexive.margin import (
    BINANCE_BTC_2021,
    LeverageMix,
    MarginTiers,
    liquidation_price,
    liquidation_prices,
)


def test_cumulative_amounts_follow_the_floors() -> None:
    # cum_1 = 50k * (0.005 - 0.004); cum_2 = 50 + 250k * 0.005; cum_3 = 1300 + 1M * 0.015
    assert BINANCE_BTC_2021.cumulative_usd == pytest.approx((0.0, 50.0, 1300.0, 16300.0))
    assert [BINANCE_BTC_2021.bracket(x) for x in (0.0, 49_999.0, 50_000.0, 2e6)] == [0, 0, 1, 3]


@pytest.mark.parametrize(
    ("qty", "leverage", "long", "expected"),
    [
        # $10k notional, first bracket (MMR 0.4 %, cum 0): EP (1 -+ 1/L) / (1 -+ MMR)
        (0.1, 20.0, True, 100_000 * 0.95 / 0.996),  # 95381.53
        (0.1, 20.0, False, 100_000 * 1.05 / 1.004),  # 104581.67
        # $500k, third bracket (MMR 1 %, cum 1300): (N (1 - 1/L) - cum) / (Q (1 - MMR))
        (5.0, 50.0, True, (500_000 * 0.98 - 1300) / (5 * 0.99)),  # 98727.27
        (5.0, 50.0, False, (500_000 * 1.02 + 1300) / (5 * 1.01)),  # 101247.52
        # $2M, fourth bracket (MMR 2.5 %, cum 16300, at most 20x): 100x is capped to 20x
        (20.0, 100.0, True, 1_883_700 / 19.5),  # exactly 96600
        (20.0, 100.0, False, 2_116_300 / 20.5),  # 103234.15
    ],
)
def test_liquidation_prices_by_hand(
    qty: float, leverage: float, long: bool, expected: float
) -> None:
    assert liquidation_price(100_000.0, qty, leverage, long) == pytest.approx(expected, rel=1e-12)


def test_the_vectorised_form_reports_the_capped_leverage() -> None:
    lp, lev = liquidation_prices(
        np.array([100_000.0, 100_000.0]), np.array([0.1, 20.0]), np.array([100.0, 100.0]),
        np.array([True, True]),
    )  # fmt: skip
    assert lev.tolist() == [100.0, 20.0]
    assert lp[1] == pytest.approx(96_600.0, rel=1e-12)
    assert lp[0] < 100_000.0 < 100_000.0 * 1.0001  # a long's level is below its entry


def test_tiers_and_mixes_are_checked() -> None:
    with pytest.raises(ValueError, match="start at 0"):
        MarginTiers((10.0, 20.0), (0.01, 0.02), (10.0, 5.0))
    with pytest.raises(ValueError, match="1/L > MMR"):
        MarginTiers((0.0,), (0.02,), (100.0,))  # 1 % margin at 100x: below maintenance
    with pytest.raises(ValueError, match="leverage mix"):
        LeverageMix((0.5,), (1.0,))


def test_a_mix_draws_only_its_values_in_proportion() -> None:
    mix = LeverageMix((5.0, 50.0, 100.0), (3.0, 1.0, 0.0))
    draws = mix.draw(np.random.default_rng(3), 40_000)
    assert set(np.unique(draws).tolist()) == {5.0, 50.0}
    assert float(np.mean(draws == 5.0)) == pytest.approx(0.75, abs=0.01)
    assert mix.scaled(2.0).weights == (3.0, 2.0, 0.0)  # only leverages above 10x scaled
