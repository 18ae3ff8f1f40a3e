"""Conventions every model kernel follows, and the helpers that carry them. Pure (numpy + numba).

Every kernel takes NumPy arrays and scalars only, writes into preallocated arrays, touches no Python
object or global, and is compiled with ``cache=True`` (``njit`` below). State is indexed by a dense
pair id (``consumers.state.RiskState`` owns the arrays, assigns the ids and checks dtypes). Time is
event time in seconds (float64). Each kernel has a slow, obvious pure-Python reference in the tests
(``tests/consumers/consumer_refs.py``, ``tests/consumers/models/*_ref.py``).

Read-outs cover a set of pairs, not "the first n": a read kernel takes ``rows`` (1-d int64 pair
ids) and writes pair ``rows[i]``'s value at output index ``i``; an input that is itself a read-out
(already one row per requested pair, e.g. decayed rates) is indexed by ``i`` too. So reading ``k``
pairs costs O(k) whatever the number of pairs. The kernels do not check ``rows`` (numba does not
bounds-check): the wrappers pass them through ``pair_rows`` first.
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


@njit
def _rows_within(rows: I64, n_pairs: int) -> bool:
    for i in range(rows.shape[0]):  # noqa: SIM110 (a plain loop: compiled, no generator)
        if not 0 <= rows[i] < n_pairs:
            return False
    return True


def pair_rows(rows: I64 | None, n_pairs: int, *, distinct: bool = False) -> I64:
    """The pair ids a read-out or a maintenance pass covers, checked, as the kernels take them.

    ``None``: every pair ``0..n_pairs-1`` in order. Otherwise a 1-d int64 array of ids in
    ``[0, n_pairs)``, in any order (TypeError for another type or dtype, ValueError for an id
    out of range). Repeated ids are allowed unless ``distinct``: a read is pure, so a repeated id
    only repeats its row; maintenance folds state in, so it refuses them (ValueError).
    """
    if rows is None:
        return np.arange(n_pairs, dtype=np.int64)
    if not isinstance(rows, np.ndarray) or rows.dtype != np.int64 or rows.ndim != 1:
        raise TypeError("rows must be a 1-d int64 array of pair ids")
    rows = np.ascontiguousarray(rows)
    if not _rows_within(rows, n_pairs):
        raise ValueError(f"rows must be pair ids in [0, {n_pairs})")
    if distinct and rows.shape[0] > 1 and np.unique(rows).shape[0] != rows.shape[0]:
        raise ValueError("rows must not repeat a pair id here")
    return rows
