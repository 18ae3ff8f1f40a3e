"""Liquidation prices and level bins (consumers/models/liquidation_price.py) against hand-computed
decimals (rel 1e-12) and the first-tier ratios.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from consumers.models import liquidation_map as lm
from consumers.models import liquidation_price as lq

LONG, SHORT = lq.LONG, lq.SHORT


# (position notional USD, leverage bucket, long LP, short LP) at EP = 40,000, default tiers;
# long = EP*(1 - 1/L - cum/N)/(1 - MMR), short = EP*(1 + 1/L + cum/N)/(1 + MMR)
HAND = [
    (10_000.0, 10.0, 36144.578313253012, 43824.701195219124),  # tier 1: 36000/0.996, 44000/1.004
    (10_000.0, 5.0, 32128.514056224900, 47808.764940239045),  # tier 1: 32000/0.996, 48000/1.004
    (49_999.0, 10.0, 36144.578313253012, 43824.701195219124),  # still tier 1
    (100_000.0, 10.0, 36160.804020100506, 43800.995024875621),  # tier 2: cum/N = 0.0005
    (500_000.0, 25.0, 38682.828282828283, 41291.089108910892),  # tier 3: cum/N = 0.0026
    (
        2_000_000.0,
        100.0,
        38640.0,
        41293.658536585368,
    ),  # tier 4: 100x capped at 20x, cum/N = 0.00815
    (2_000_000.0, 20.0, 38640.0, 41293.658536585368),  # the same position at 20x
]


@pytest.mark.parametrize(("n_usd", "lev", "long_lp", "short_lp"), HAND)
def test_liquidation_price_every_tier(n_usd: float, lev: float, long_lp: float,
                                      short_lp: float) -> None:  # fmt: skip
    tiers = lm.LiqMapParams().tiers()
    assert math.isclose(
        lq.liquidation_price(LONG, 40_000.0, lev, n_usd, tiers), long_lp, rel_tol=1e-12
    )
    assert math.isclose(
        lq.liquidation_price(SHORT, 40_000.0, lev, n_usd, tiers), short_lp, rel_tol=1e-12
    )


def test_liquidation_price_tier_floor_is_inclusive_and_doc_short_form() -> None:
    tiers = lm.LiqMapParams().tiers()
    # N = 50,000 is tier 2: 40000*(0.9 - 50/50000)/0.995 = 35960/0.995
    assert math.isclose(lq.liquidation_price(LONG, 40_000.0, 10.0, 50_000.0, tiers),
                        36140.703517587943, rel_tol=1e-12)  # fmt: skip
    # without the maintenance amount: EP*(1 - 1/L)/(1 - MMR), the doc's printed form
    short_form = lm.LiqMapParams(use_maintenance_amount=False).tiers()
    assert math.isclose(
        lq.liquidation_price(LONG, 40_000.0, 10.0, 100_000.0, short_form),
        36180.904522613062,
        rel_tol=1e-12,
    )  # 36000/0.995
    assert math.isclose(
        lq.liquidation_price(SHORT, 40_000.0, 10.0, 100_000.0, short_form),
        43781.094527363181,
        rel_tol=1e-12,
    )  # 44000/1.005
    # zero notional (a zero-size trade) is tier 1 with cum = 0, no division by zero
    assert lq.liquidation_price(LONG, 100.0, 10.0, 0.0, tiers) == 100.0 * 0.9 / 0.996


def test_level_offsets_are_the_first_tier_ratios() -> None:
    prm = replace(lm.LiqMapParams(), leverages=(1.0, 10.0, 500.0), leverage_weights=(1.0,) * 3)
    off, big = lq.level_offsets(prm.tiers(), prm.buckets(), prm.bins_per_unit)
    # 1x long: LP = 0, no level; 500x is capped at the first tier's 125x
    assert math.isnan(off[LONG, 0])
    assert off[LONG, 1] == math.log(0.9 / 0.996) * 1000.0
    assert off[LONG, 2] == math.log((1.0 - 1.0 / 125.0) / 0.996) * 1000.0
    assert off[SHORT].tolist() == [math.log(r / 1.004) * 1000.0 for r in (2.0, 1.1, 1.008)]
    assert big == math.log(2.0 / 1.004)
