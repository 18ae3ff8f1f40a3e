"""Helpers for the per-pair read-out tests: compare a read of some pairs (``rows``) with the full
read restricted to those rows, bit for bit, through nested read-out containers."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def subsets(rng: np.random.Generator, n: int) -> list[I64]:
    """Rows to try on ``n`` pairs: none, one, a few, many, all (shuffled), with repeats."""
    out = [np.empty(0, np.int64), np.array([n - 1]), np.array([0])]
    for k in (1, 2, 10, n // 3, n):
        if 0 < k <= n:
            out.append(rng.choice(n, size=k, replace=False).astype(np.int64))
    out.append(rng.integers(0, n, size=12).astype(np.int64))  # repeats allowed in a read
    return out


def assert_rows_of(sub: Any, full: Any, rows: I64, n_full: int, path: str = "read") -> int:
    """Assert every per-pair array of ``sub`` is ``full``'s at ``rows`` (same dtype, shape and
    bytes: NaN where NaN, -0.0 kept); other values equal. Arrays whose first axis is not the
    pairs' (e.g. parameters) must be equal as a whole. Returns the number of arrays compared."""
    if isinstance(sub, np.ndarray):
        want = full[rows] if full.ndim and full.shape[0] == n_full else full
        assert sub.dtype == want.dtype and sub.shape == want.shape, path
        a, b = np.ascontiguousarray(sub), np.ascontiguousarray(want)
        if a.tobytes() != b.tobytes():
            bad = np.flatnonzero(a.view(np.uint8) != b.view(np.uint8))[:1]
            raise AssertionError(f"{path}: differs (first byte {bad}); {a.ravel()[:6]} vs "
                                 f"{b.ravel()[:6]}")  # fmt: skip
        return 1
    if isinstance(sub, list):  # e.g. the read-out's keys
        assert sub == [full[i] for i in rows.tolist()], path
        return 0
    if dataclasses.is_dataclass(sub):
        names = [f.name for f in dataclasses.fields(sub)]
    elif isinstance(sub, tuple) and hasattr(sub, "_fields"):
        names = list(sub._fields)
    else:
        assert sub == full, path
        return 0
    return sum(
        assert_rows_of(getattr(sub, k), getattr(full, k), rows, n_full, f"{path}.{k}")
        for k in names
    )
