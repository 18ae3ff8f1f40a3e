"""consumers.models.bundle: configuration, growth with the pairs seen, open interest, read-out
wiring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from consumers.columns import BatchArrays
from consumers.models.bundle import ModelParams
from consumers.models.score import COMPONENTS, ScoreParams
from consumers.state import RiskState
from monitor.core.config import load
from monitor.core.errors import ConfigError

T0 = 1_700_000_000.0


def test_risk_config_reaches_every_model() -> None:
    cfg = load(environ={}).with_overrides(risk={
        "hawkes_window_s": 600.0, "hawkes_min_events": 50, "vpin_bucket_usd": 1e6,
        "vpin_warmup_s": 60.0, "baseline_warmup_s": 120.0, "map_leverages": [10.0, 20.0],
        "map_leverage_weights": [0.5, 0.5], "map_half_life_s": 3600.0, "stress_horizon_s": 60.0,
        "score_weights": [1, 0, 0, 0, 0, 0, 0, 0], "score_warning": 0.5, "score_critical": 0.7,
        "hawkes_baseline_step": False,
    })  # fmt: skip
    p = ModelParams.from_config(cfg.risk)
    assert (p.hawkes.window_s, p.hawkes.min_events) == (600.0, 50)
    assert p.hawkes.baseline_step is False and p.sampled.baseline_step is False
    # the sampling-aware fit covers the same window, in bins of 1 s
    assert RiskState(4, models=p).models.sampled.n_bins == 600
    assert (p.micro.vpin_bucket_usd, p.micro.vpin_auto_warmup_s) == (1e6, 60.0)
    assert p.micro.baseline_warmup_s == 120.0
    assert p.liqmap.leverages == (10.0, 20.0) and p.liqmap.half_life_s == 3600.0
    assert p.stress_horizon_s == 60.0
    assert p.score.w_branching == 1.0 and p.score.total_weight == 1.0
    assert (p.score.warning, p.score.critical) == (0.5, 0.7)


def test_the_config_defaults_are_the_models_defaults() -> None:
    """One set of fitted weights and calibration: the config's defaults and ScoreParams' agree."""
    assert ModelParams.from_config(load(environ={}).risk).score == ScoreParams()


@pytest.mark.parametrize(
    "risk",
    [{"score_weights": [1, 2]}, {"score_weights": [0] * 8}, {"score_weights": [1] * 7}, {"map_leverages": [5.0]},
     {"score_warning": 0.9, "score_critical": 0.8}, {"hawkes_min_events": 0},
     {"stress_horizon_s": -1.0}, {"nope": 1}],
)  # fmt: skip
def test_bad_risk_config_is_refused_with_the_key(risk: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="risk"):
        load(environ={}).with_overrides(risk=risk)


def arrays(sym: str, t: float, liq: int, trades: int, px: float) -> BatchArrays:
    tl = np.full(liq, T0 + t)
    tt = np.full(trades, T0 + t)
    return BatchArrays(
        "x", sym, tl, np.zeros(liq, np.int8), np.full(liq, 1e4), tt,
        np.arange(trades, dtype=np.int8) % 2, np.full(trades, 5e3), np.full(trades, px),
        np.zeros(liq + trades, np.int64),
    )  # fmt: skip


def test_models_grow_with_the_pairs_seen_and_read_every_pair() -> None:
    st = RiskState(100)
    assert st.models.allocated == 16
    for k in range(40):
        st.apply_arrays(arrays(f"S{k}-USDT-PERP", float(k), 2, 4, 100.0 + k))
    assert st.models.allocated == 64 and st.n_pairs == 40
    r = st.read(T0 + 60.0)
    m = r.models
    assert m.score.shape == (40,) and ((m.score >= 0) & (m.score <= 1)).all()
    assert m.components.shape == (40, len(COMPONENTS))
    assert m.liqmap.totals_usd.shape[0] == 40
    # every pair's map got its trades: deposited mass on both sides
    assert (m.liqmap.totals_usd[:, :, 0] > 0).all()
    assert math.isnan(m.hawkes.branching_ratio[0])  # 2 liquidations: too few for a fit


def test_open_interest_increases_deposit_and_the_first_figure_does_not() -> None:
    st = RiskState(4)
    st.apply_arrays(arrays("BTC-USDT-PERP", 0.0, 0, 2, 100.0))
    models = st.models
    before = models.liqmap.acc[0, :, 0].sum()
    models.apply_open_interest(0, T0 + 1.0, 1e9)  # the level: nothing deposited
    assert models.liqmap.acc[0, :, 0].sum() == before
    models.apply_open_interest(0, T0 + 2.0, 1e9 + 5e6)  # +5M USD of open interest
    assert models.liqmap.acc[0, :, 0].sum() == pytest.approx(before + 5e6)
    models.apply_open_interest(0, T0 + 3.0, math.nan)  # ignored
    assert models.oi_usd[0] == 1e9 + 5e6
