"""The normal CDF of the margin-stress read-out (consumers/models/margin_stress.py) against
scipy.special.ndtr: rel 1e-14 for |x| < 5 and 1e-15*(1 + x**2) in the tails (its condition number).
The read-outs themselves are tested through the state in test_liquidation_map.py.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr  # type: ignore[import-untyped]

from consumers.models import margin_stress as ms


def test_norm_cdf_matches_scipy_in_both_tails() -> None:
    # The CDF's condition number in the lower tail is ~x**2, so two correct implementations that
    # round the scaled argument differently differ by up to ~x**2 ulps: rel 1e-15*(1 + x**2)
    # (measured max 3.8e-16*(1 + x**2) at x = -37.4); rel 1e-14 for |x| < 5 (measured 7.5e-15).
    for x in np.concatenate((np.linspace(-37.5, 9.0, 4651), [0.0, -1e-300, 1e-10])):
        got, want = ms.norm_cdf(float(x)), float(ndtr(x))
        tol = 1e-14 if abs(x) < 5 else 1e-15 * (1.0 + x * x)
        assert math.isclose(got, want, rel_tol=tol), x
    # scipy flushes below 1e-308 to 0; erfc keeps going (Phi(-38) = 2.885e-316)
    assert 2.88e-316 < ms.norm_cdf(-38.0) < 2.89e-316
    assert ms.norm_cdf(-math.inf) == 0.0 and ms.norm_cdf(math.inf) == 1.0
