"""Conventions every model kernel follows, and the helpers that carry them. Pure (numpy + numba).

Every kernel takes NumPy arrays and scalars only, writes into preallocated arrays, touches no Python
object or global, and is compiled with ``cache=True`` (``njit`` below). State is indexed by a dense
pair id (``consumers.state.RiskState`` owns the arrays, assigns the ids and checks dtypes). Time is
event time in seconds (float64). Each kernel has a slow, obvious pure-Python reference in the tests
(``tests/consumers/consumer_refs.py``, ``tests/consumers/models/*_ref.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

F = TypeVar("F", bound=Callable[..., object])

NO_INTERVAL: Final = np.iinfo(np.int64).min  # interval[p] of a pair that has seen no trade

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B1 = npt.NDArray[np.bool_]


def njit(fn: F) -> F:
    """``numba.njit(cache=True)`` that keeps the function's signature for mypy."""
    return cast(F, numba.njit(cache=True)(fn))
