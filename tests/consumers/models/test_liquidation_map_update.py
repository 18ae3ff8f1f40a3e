"""The decay factors of the liquidation map's update (consumers/models/liquidation_map_update.py):
within 1 ulp of 60-digit values.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np

from consumers.models import liquidation_map_update as lmu


def _exact_decay(x: float) -> tuple[Decimal, Decimal]:
    """exp(-x) and 1 - exp(-x) to 60 digits (the second by its series for small x)."""
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(x)
        if x < 0.01:  # the 14th term is below 1e-38 relative
            return (-d).exp(), sum((-1) ** (k + 1) * d**k / math.factorial(k) for k in range(1, 14))
        return (-d).exp(), 1 - (-d).exp()


def test_decay_factors_within_one_ulp() -> None:
    # measured: exp(-x) 0.501 ulp, 1 - exp(-x) 0.946 ulp below 1e-3 (the polynomial); libm above
    xs = [0.0, 5e-324, 1e-300, 1e-12, 3.3e-4, math.nextafter(1e-3, 0.0), 1e-3, 0.01, math.log(2.0),
          40.0, 745.0, 800.0, *np.geomspace(1e-15, 1e-3, 1501).tolist()]  # fmt: skip
    for x in xs:
        f, g = lmu.decay_factors(x)
        ef, eg = _exact_decay(x)
        assert abs(Decimal(f) - ef) <= Decimal(math.ulp(float(ef))), x
        assert abs(Decimal(g) - eg) <= Decimal(math.ulp(float(eg))), x
    assert lmu.decay_factors(0.0) == (1.0, 0.0) and lmu.decay_factors(math.inf) == (0.0, 1.0)
