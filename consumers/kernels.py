"""Transitional: the kernel conventions moved to ``consumers.models.jit`` (and the flow and
volatility kernels to ``consumers.models.flow`` / ``consumers.models.volatility``). This module
only re-exports the names that modules written before the move still import from here
(``consumers/sampled_*.py``); delete it once they import from ``consumers.models.jit``."""

from __future__ import annotations

from consumers.models.jit import B1, F64, I8, I32, I64, NO_INTERVAL, njit

__all__ = ["B1", "F64", "I8", "I32", "I64", "NO_INTERVAL", "njit"]
